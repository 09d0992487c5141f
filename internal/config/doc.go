// Package config reads keepalived.conf into a typed, validated model of
// what govs runs: global_defs, vrrp_script, vrrp_sync_group, vrrp_instance,
// virtual_server_group and virtual_server with their real servers and
// health checkers, with keepalived's defaults filled in.
//
// Parsing never stops at the first problem: ParseFile returns the model
// and every diagnostic (error or warning) with the file and line it is
// about. Keywords keepalived knows but govs does not act on are accepted
// with a warning naming them; unknown keywords are warnings too, like in
// keepalived; structural and value errors are errors. A missing closing
// brace is detected where a keyword that is only valid at top level
// (vrrp_instance, virtual_server, ...) appears inside a block; the open
// block is reported at its opening line and closed there, so the rest of
// the file is still checked.
//
// The package is pure: files are read through an injectable FS (the OS by
// default), and nothing else touches the system.
package config
