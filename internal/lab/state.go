package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultStateRoot holds one state directory per lab.
const DefaultStateRoot = "/run/govs/lab"

// Process is a process the lab started inside one of its namespaces.
type Process struct {
	Role string `json:"role"`
	PID  int    `json:"pid"`
	// Marker is a string in the process's command line; Down checks it
	// before signalling, so a reused PID is never killed.
	Marker string `json:"marker"`
	// Argv is the command as started (inside the role's namespace), so a
	// test can start it again after killing it.
	Argv []string `json:"argv,omitempty"`
	// NSRole is the role whose namespace it runs in, when not its own
	// (BIRD runs in the router's).
	NSRole string `json:"ns_role,omitempty"`
}

// State is what a lab made, written as it is made.
type State struct {
	Name       string    `json:"name"`
	Webs       int       `json:"webs"`
	WebServer  string    `json:"web_server"`
	Mode       string    `json:"mode,omitempty"` // "" is ModeDR (labs made before modes)
	Directors  int       `json:"directors,omitempty"`
	BGP        bool      `json:"bgp,omitempty"`
	Resilient  bool      `json:"resilient,omitempty"`
	Namespaces []string  `json:"namespaces"`
	Processes  []Process `json:"processes"`
	// Files are the generated configuration files, by role.
	Files map[string]string `json:"files,omitempty"`
}

const stateFile = "lab.json"

// Topology is the shape of the lab the state describes.
func (s *State) Topology() Topology {
	return Topology{Name: s.Name, Webs: s.Webs, Mode: s.Mode, Directors: s.Directors, BGP: s.BGP, Resilient: s.Resilient}
}

func loadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lab state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse lab state %s: %w", filepath.Join(dir, stateFile), err)
	}
	return &s, nil
}

func saveState(dir string, s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode lab state: %w", err)
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return nil
}
