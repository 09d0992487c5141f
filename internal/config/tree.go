package config

import (
	"fmt"
	"strings"

	"github.com/govs/govs/internal/config/diag"
	"github.com/govs/govs/internal/config/lexer"
)

// node is one statement: a keyword with its arguments and, when it opens a
// block, the statements inside.
type node struct {
	Keyword string
	Args    []lexer.Token
	Pos     Pos
	Block   bool
	Body    []*node
}

// arg returns argument i's text, or "".
func (n *node) arg(i int) string {
	if i < len(n.Args) {
		return n.Args[i].Text
	}
	return ""
}

// describe names the node the way a user wrote it: keyword and arguments.
func (n *node) describe() string {
	parts := []string{n.Keyword}
	for _, a := range n.Args {
		parts = append(parts, a.Text)
	}
	return strings.Join(parts, " ")
}

// topLevelOnly are keywords keepalived accepts only outside any block.
// Meeting one inside a block almost always means a closing brace is
// missing above it.
var topLevelOnly = map[string]bool{
	"global_defs":          true,
	"vrrp_script":          true,
	"vrrp_sync_group":      true,
	"vrrp_instance":        true,
	"virtual_server":       true,
	"virtual_server_group": true,
	"local_address_group":  true,
	"govs_bgp":             true,
	"static_ipaddress":     true,
	"static_routes":        true,
	"static_rules":         true,
	"vrrp_track_process":   true,
	"vrrp_track_file":      true,
	"bfd_instance":         true,
	"linkbeat_interfaces":  true,
	"SSL":                  true,
}

// buildTree groups lexed lines into nested statements. Brace problems are
// reported and repaired so the rest of the file is still checked.
func buildTree(lines []lexer.Line, d *diag.List) []*node {
	var (
		root  []*node
		stack []*node
		// last is the most recent statement if it ended its line, so that a
		// "{" alone on the next line opens its block.
		last *node
	)
	appendNode := func(n *node) {
		if len(stack) == 0 {
			root = append(root, n)
		} else {
			top := stack[len(stack)-1]
			top.Body = append(top.Body, n)
		}
	}
	for _, line := range lines {
		toks := line.Tokens
		for i := 0; i < len(toks); {
			t := toks[i]
			switch {
			case t.IsClose():
				if len(stack) == 0 {
					d.Errorf(t.Pos, "}", "unexpected '}' with no block open")
				} else {
					stack = stack[:len(stack)-1]
				}
				last = nil
				i++
				continue
			case t.IsOpen():
				if i == 0 && last != nil && !last.Block {
					last.Block = true
					stack = append(stack, last)
				} else {
					d.Errorf(t.Pos, "{", "unexpected '{' without a keyword before it")
					anon := &node{Keyword: "{", Pos: t.Pos, Block: true}
					appendNode(anon)
					stack = append(stack, anon)
				}
				last = nil
				i++
				continue
			}
			j := i + 1
			for j < len(toks) && !toks[j].IsOpen() && !toks[j].IsClose() {
				j++
			}
			n := &node{Keyword: t.Text, Args: toks[i+1 : j], Pos: t.Pos}
			if len(stack) > 0 && !t.Quoted && topLevelOnly[t.Text] {
				for k := len(stack) - 1; k >= 0; k-- {
					open := stack[k]
					where := fmt.Sprintf("line %d", t.Pos.Line)
					if t.Pos.File != open.Pos.File {
						where = t.Pos.String()
					}
					d.Errorf(open.Pos, open.Keyword, "%s opened here is never closed (%s at %s is only valid at top level; missing '}')",
						open.describe(), t.Text, where)
				}
				stack = stack[:0]
			}
			appendNode(n)
			last = nil
			if j < len(toks) && toks[j].IsOpen() {
				n.Block = true
				stack = append(stack, n)
				j++
			} else if j == len(toks) {
				last = n
			}
			i = j
		}
	}
	for k := len(stack) - 1; k >= 0; k-- {
		open := stack[k]
		d.Errorf(open.Pos, open.Keyword, "%s opened here is never closed (missing '}' before end of file)", open.describe())
	}
	return root
}

// dump renders a tree for tests.
func dump(nodes []*node, indent string, b *strings.Builder) {
	for _, n := range nodes {
		fmt.Fprintf(b, "%s%d %s", indent, n.Pos.Line, n.describe())
		if n.Block {
			b.WriteString(" {\n")
			dump(n.Body, indent+"  ", b)
			fmt.Fprintf(b, "%s}\n", indent)
		} else {
			b.WriteByte('\n')
		}
	}
}
