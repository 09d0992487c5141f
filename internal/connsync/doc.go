// Package connsync keeps connection tables in step between directors, as
// LVS's sync daemon does (keepalived's lvs_sync_daemon): while MASTER of
// the configured VRRP instance a director multicasts its connections
// (new, refreshed, and all of them periodically) on the sync interface;
// every director inserts what it hears into its own table, so that after
// a failover the new MASTER sends each existing flow to the real server
// it was already using. In a mesh (govs_bgp's connection_sync: several
// active directors behind a router's ECMP) every director sends and
// takes, so a flow the router moves to another director keeps its real
// server. The wire format is in connsync/proto.
package connsync
