// Command govs is a Layer-4 load balancer: LVS direct routing plus keepalived's
// VRRP and health checks, on an XDP data plane.
//
// The command line is cobra's: each subcommand lives in its own file as a
// new…Cmd constructor, listed in newRootCmd.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// exitError carries a command's exit status out of cobra: the command has
// already said why on stderr.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitCode turns a command's exit status into RunE's error.
func exitCode(code int) error {
	if code == 0 {
		return nil
	}
	return exitError{code}
}

// usageError is a bad command line: exit status 2, as flag parsing errors.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// noArgs refuses positional arguments: a stray word is an error, not ignored.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	return nil
}

// usageExit is the RunE of a command run without its subcommand or
// arguments: the usage on stderr, exit status 2.
func usageExit(stderr io.Writer) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		cmd.SetOut(stderr)
		_ = cmd.Usage()
		return exitError{2}
	}
}

// subcommandArgs is the Args of a command that only groups subcommands.
func subcommandArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unknown subcommand %q", args[0])
	}
	return nil
}

// newRootCmd builds the whole command tree, writing to stdout and stderr.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "govs",
		Short: "Go Virtual Server: keepalived's configuration on an XDP load balancer",
		Long: "govs runs keepalived.conf files: VRRP, health checks and LVS virtual servers, forwarded by an XDP\n" +
			"data plane (DR, TUN, NAT, FullNAT; fwmark services; BGP announcements). See README.md and docs/.",
		Version:       buildVersion(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q", args[0])
			}
			return usageExit(stderr)(cmd, args)
		},
	}
	root.SetVersionTemplate("govs {{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	root.AddCommand(
		newVersionCmd(stdout),
		newCheckCmd(stdout, stderr),
		newRunCmd(stderr),
		newLabCmd(stdout, stderr),
		newRealserverCmd(stdout, stderr),
		newListCmd(stdout, stderr),
		newReloadCmd(stdout, stderr),
		newWeightCmd("weight", stdout, stderr),
		newWeightCmd("drain", stdout, stderr),
		newWeightCmd("undrain", stdout, stderr),
		newSaveCmd(stdout, stderr),
		newBGPCmd(stdout, stderr),
		newCleanupCmd(stdout, stderr),
		newManCmd(stdout),
	)
	root.SetHelpCommand(newHelpCmd(root))
	return root
}

// newHelpCmd is `govs help [CMD]`, which, unlike cobra's, fails on a
// command that does not exist.
func newHelpCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "help about any command",
		RunE: func(_ *cobra.Command, args []string) error {
			c, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 || (c == root && len(args) > 0) {
				name := ""
				if len(args) > 0 {
					name = args[len(args)-1]
				}
				return usagef("unknown command %q", name)
			}
			return c.Help()
		},
	}
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the govs version",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintf(stdout, "govs %s\n", buildVersion())
			return nil
		},
	}
}

// buildVersion says which govs this is, from the build information the Go
// toolchain embeds: the module version (a tag, or a pseudo-version from
// `go install`), else the VCS revision and whether the tree was modified.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	return versionOf(bi)
}

func versionOf(bi *debug.BuildInfo) string {
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	if rev := settings["vcs.revision"]; rev != "" {
		v += " " + rev[:min(12, len(rev))]
		if settings["vcs.modified"] == "true" {
			v += "-dirty"
		}
	}
	return v + " " + bi.GoVersion
}

// run executes the command line and returns the process exit status: 0,
// the command's own status, or 2 for a bad command line.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// Flag and argument errors: cobra's own, and usageError.
	fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
	fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	return 2
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
