package realserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// DefaultStatePath is where Manager keeps its Record.
const DefaultStatePath = "/run/govs/realserver.json"

// Record is what Up changed, so that Down can undo it.
type Record struct {
	// VIPs are the VIPs Up configured.
	VIPs []VIP `json:"vips"`
	// Previous holds each sysctl's value from before govs first changed it.
	Previous map[string]string `json:"previous_sysctls,omitempty"`
	// LinksUp lists devices Up set up (they were down).
	LinksUp []string `json:"links_set_up,omitempty"`
}

func (r Record) clone() Record {
	return Record{
		VIPs:     slices.Clone(r.VIPs),
		Previous: maps.Clone(r.Previous),
		LinksUp:  slices.Clone(r.LinksUp),
	}
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

// LoadRecord reads the record at path; a missing file gives (nil, nil).
func LoadRecord(path string) (*Record, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parse state file %s: %w", path, err)
	}
	if err := ValidateVIPs(r.VIPs); err != nil {
		return nil, fmt.Errorf("parse state file %s: %w", path, err)
	}
	return &r, nil
}

// SaveRecord writes r to path atomically; an empty record removes the file.
func SaveRecord(path string, r Record) error {
	if len(r.VIPs) == 0 && len(r.Previous) == 0 && len(r.LinksUp) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove state file: %w", err)
		}
		return nil
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".realserver-*.json")
	if err != nil {
		return fmt.Errorf("create state file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	return nil
}
