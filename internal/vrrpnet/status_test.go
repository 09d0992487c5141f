package vrrpnet

import "testing"

func TestReasonLabel(t *testing.T) {
	for in, want := range map[string]string{
		"decode: bad checksum":                "decode_bad_checksum",
		"advertisement interval mismatch":     "advertisement_interval_mismatch",
		"TTL/hop limit is not 255":            "ttl_hop_limit_is_not_255",
		"advert from our own address":         "advert_from_our_own_address",
		"multicast/unicast mismatch":          "multicast_unicast_mismatch",
		"instance is not in BACKUP or MASTER": "instance_is_not_in_backup_or_master",
	} {
		if got := reasonLabel(in); got != want {
			t.Errorf("reasonLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
