// Package runas turns the user and group keepalived.conf names for a script
// ("script USER [GROUP]", script_user, MISC_CHECK's user) into the
// credential its process runs with.
package runas

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// Credential resolves userName and groupName (both optional; the group
// defaults to the user's, the user to the current one) into the
// credential a child process runs with, supplementary groups included.
func Credential(userName, groupName string) (*syscall.Credential, error) {
	cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}
	if userName != "" {
		u, err := user.Lookup(userName)
		if err != nil {
			return nil, fmt.Errorf("look up script user: %w", err)
		}
		uid, err := strconv.ParseUint(u.Uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("parse uid of %s: %w", userName, err)
		}
		gid, err := strconv.ParseUint(u.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("parse gid of %s: %w", userName, err)
		}
		cred.Uid, cred.Gid = uint32(uid), uint32(gid)
		if groups, err := u.GroupIds(); err == nil {
			for _, g := range groups {
				if n, err := strconv.ParseUint(g, 10, 32); err == nil {
					cred.Groups = append(cred.Groups, uint32(n))
				}
			}
		}
	}
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			return nil, fmt.Errorf("look up script group: %w", err)
		}
		gid, err := strconv.ParseUint(g.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("parse gid of %s: %w", groupName, err)
		}
		cred.Gid = uint32(gid)
	}
	return cred, nil
}
