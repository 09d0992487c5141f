package vrrp

import (
	"fmt"
	"time"
)

// Group is a vrrp_sync_group: when one member changes state on its own, the
// others follow, so that e.g. the LAN-side and WAN-side VIPs never end up on
// different directors.
type Group struct {
	Name    string
	Members []*Machine
}

// Member pairs a machine with actions the group made it take.
type Member struct {
	Machine *Machine
	Actions []Action
}

// Follow applies the group rule after member from made transition t and
// returns what the other members must do. Forced changes do not propagate
// further, so the group cannot oscillate.
func (g *Group) Follow(now time.Time, from *Machine, t Transition) []Member {
	var out []Member
	anyOwnFault := false
	for _, m := range g.Members {
		if m.OwnFault() {
			anyOwnFault = true
		}
	}
	reason := fmt.Sprintf("sync group %s: %s went %v", g.Name, from.cfg.Name, t.To)
	for _, m := range g.Members {
		if m == from {
			continue
		}
		var acts []Action
		switch {
		case t.To == StateFault:
			acts = m.SetGroupFault(now, true)
		case t.From == StateFault && !anyOwnFault:
			acts = m.SetGroupFault(now, false)
		case t.To == StateMaster || t.To == StateBackup:
			acts = m.Force(now, t.To, reason)
		}
		if len(acts) > 0 {
			out = append(out, Member{Machine: m, Actions: acts})
		}
	}
	return out
}
