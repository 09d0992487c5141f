package config

import (
	"strconv"
)

// TrackFile is a track_file (vrrp_track_file) definition: a file holding a
// number that tracking instances read whenever it changes.
type TrackFile struct {
	Name     string
	Pos      Pos
	Keywords KeywordPos
	Path     string
	// Weight and Reverse are the default of entries that set none.
	Weight  int
	Reverse bool
	// Init, when set, is init_file: the value written at start when the
	// file does not exist, or always with InitOverwrite.
	Init          *int
	InitOverwrite bool
}

// TrackFile returns the track_file called name, or nil.
func (c *Config) TrackFile(name string) *TrackFile {
	for _, f := range c.TrackFiles {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// trackFileWeight is the range keepalived takes for a track_file's own
// weight; entries take -254..254.
const trackFileWeight = 2147483647

func (b *builder) trackFile(blk *node) {
	name, ok := b.blockName(blk)
	if !ok {
		return
	}
	if b.cfg.TrackFile(name) != nil {
		b.errorf(blk, "track_file %s defined twice", name)
		return
	}
	f := &TrackFile{Name: name, Pos: blk.Pos, Weight: 1}
	for _, n := range blk.Body {
		f.Keywords.add(n)
		switch n.Keyword {
		case "file":
			if p, ok := b.stringArg(n); ok {
				f.Path = p
			}
		case "weight":
			if !b.leaf(n, 1, 2) {
				continue
			}
			v, err := strconv.Atoi(n.Args[0].Text)
			if err != nil || v < -trackFileWeight || v > trackFileWeight {
				b.errorf(n, "invalid weight '%s' (want %d..%d)", n.Args[0].Text, -trackFileWeight, trackFileWeight)
				continue
			}
			f.Weight = v
			if len(n.Args) == 2 {
				if n.Args[1].Text != "reverse" {
					b.errorf(n, "unexpected '%s' (want reverse)", n.Args[1].Text)
					continue
				}
				f.Reverse = true
			}
		case "init_file":
			if !b.leaf(n, 0, 2) {
				continue
			}
			v := 0
			for _, a := range n.Args {
				if a.Text == "overwrite" {
					f.InitOverwrite = true
					continue
				}
				i, err := strconv.Atoi(a.Text)
				if err != nil {
					b.errorf(n, "invalid value '%s' (want a number, then overwrite)", a.Text)
					continue
				}
				v = i
			}
			f.Init = &v
		default:
			b.other(n, "track_file", set())
		}
	}
	if f.Path == "" {
		b.errorf(blk, "track_file %s has no file", name)
		return
	}
	b.cfg.TrackFiles = append(b.cfg.TrackFiles, f)
}
