package config

import (
	"testing"
)

func TestTrackFiles(t *testing.T) {
	seven := 7
	runCases(t, []caseT{
		{
			name: "definitions and entries",
			src: `track_file w {
    file "/run/govs/weight"
    weight -2 reverse
    init_file 7 overwrite
}
vrrp_track_file plain {
    file /run/govs/plain
}
` + inst(` track_file {
  w
  plain weight 254
  nosuch
 }`),
			diags: []string{"t.conf:15: warning: track_file: track_file 'nosuch' is not defined; ignored"},
			check: func(t *testing.T, c *Config) {
				eq(t, "TrackFiles", c.TrackFiles, []*TrackFile{
					{Name: "w", Pos: at(1), Keywords: KeywordPos{"file": at(2), "weight": at(3), "init_file": at(4)}, Path: "/run/govs/weight", Weight: -2, Reverse: true, Init: &seven, InitOverwrite: true},
					{Name: "plain", Pos: at(6), Keywords: KeywordPos{"file": at(7)}, Path: "/run/govs/plain", Weight: 1},
				})
				eq(t, "instance TrackFiles", c.Instance("VI_1").TrackFiles, []TrackScript{
					{Name: "w", Weight: -2, Reverse: true, Pos: at(13)},
					{Name: "plain", Weight: 254, WeightSet: true, Pos: at(14)},
					{Name: "nosuch", Pos: at(15)},
				})
			},
		},
		{
			name: "bad definitions and weights",
			src: "track_file nofile {\n    weight 2\n}\ntrack_file w {\n    file /run/w\n    weight 1 sideways\n    init_file many\n}\n" +
				inst(" track_file {\n  w weight 255\n }"),
			diags: []string{
				"t.conf:1: track_file: track_file nofile has no file",
				"t.conf:6: weight: unexpected 'sideways' (want reverse)",
				"t.conf:7: init_file: invalid value 'many' (want a number, then overwrite)",
				"t.conf:13: track_file: w: weight 255 outside range [-254, 254]",
			},
		},
	})
}
