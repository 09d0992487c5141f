package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/govs/govs/internal/lab"
	"github.com/govs/govs/internal/webserver"
)

func labUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: govs lab up|down|status|test|demo [--name NAME] [--webs N] [--web-server auto|nginx|builtin] [--state-dir DIR]")
	fmt.Fprintln(w, "       govs lab up [--director-cmd CMD | --no-directors]")
	fmt.Fprintln(w, "       govs lab test|demo [--requests N] [--json] [--expect-sync]")
	fmt.Fprintln(w, "       govs lab webserver --name NAME [--listen :80]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Builds the scenario (client, router with port forward, LAN, two directors running govs,")
	fmt.Fprintln(w, "web servers) in network namespaces named govs-lab-NAME-*; test exercises it and prints a")
	fmt.Fprintln(w, "report; demo is up + test + down.")
}

func runLab(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		labUsage(stderr)
		return 2
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("lab "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "default", "lab name (letters and digits): namespaces are govs-lab-NAME-*")
	stateDir := fs.String("state-dir", "", "state directory (default "+lab.DefaultStateRoot+"/NAME)")
	webs := fs.Int("webs", 2, "number of web servers (up)")
	webKind := fs.String("web-server", lab.WebAuto, "web server: auto (nginx if installed), nginx or builtin (up)")
	directorCmd := fs.String("director-cmd", defaultDirectorCmd, "command started in each director namespace; {govs}, {conf}, {dir}, {state} are substituted (up, demo)")
	noDirectors := fs.Bool("no-directors", false, "start no director (up)")
	requests := fs.Int("requests", 1000, "requests of the distribution check (test, demo)")
	asJSON := fs.Bool("json", false, "print the report as JSON (test, demo)")
	expectSync := fs.Bool("expect-sync", false, "fail when long-lived connections do not survive a master kill (test, demo)")
	listen := fs.String("listen", ":80", "listen address (webserver)")
	verbose := fs.Bool("v", false, "log each step")
	switch sub {
	case "-h", "--help", "help":
		labUsage(stdout)
		return 0
	case "up", "down", "status", "webserver", "test", "demo":
	default:
		fmt.Fprintf(stderr, "govs lab: unknown subcommand %q\n\n", sub)
		labUsage(stderr)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "govs lab %s: unexpected argument %q\n", sub, fs.Arg(0))
		return 2
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	switch sub {
	case "up", "demo":
		opts := lab.Options{Name: *name, Webs: *webs, StateDir: *stateDir, WebServer: *webKind, Log: log}
		if !*noDirectors && *directorCmd != "" {
			opts.DirectorCmd = strings.Fields(*directorCmd)
		}
		st, err := lab.Up(opts)
		if err != nil {
			fmt.Fprintf(stderr, "govs: %v\n", err)
			return 1
		}
		if sub == "demo" {
			return labDemo(*name, lab.StateDirFor(*name, *stateDir), *requests, *asJSON, *expectSync, stdout, stderr, log)
		}
		fmt.Fprintf(stdout, "lab %s is up: %d namespaces, %d web servers (%s)\n", st.Name, len(st.Namespaces), st.Webs, st.WebServer)
		fmt.Fprintf(stdout, "client:  ip netns exec %s curl http://%s/\n", lab.Topology{Name: st.Name}.NS("client"), lab.PublicIP)
		for _, d := range lab.Directors {
			fmt.Fprintf(stdout, "%s keepalived.conf: %s\n", d, st.Files[d])
		}
		return 0
	case "test":
		return labTest(*name, lab.StateDirFor(*name, *stateDir), *requests, *asJSON, *expectSync, stdout, stderr)
	case "down":
		if err := lab.Down(*name, lab.StateDirFor(*name, *stateDir), log); err != nil {
			fmt.Fprintf(stderr, "govs: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "lab %s is down\n", *name)
		return 0
	case "status":
		items, err := lab.Status(*name, *stateDir)
		if err != nil {
			fmt.Fprintf(stderr, "govs: %v\n", err)
			return 1
		}
		code := 0
		for _, it := range items {
			mark := "ok  "
			if !it.OK {
				mark, code = "FAIL", 1
			}
			fmt.Fprintf(stdout, "%s %s: %s\n", mark, it.What, it.Note)
		}
		return code
	}
	// webserver: runs in the foreground (the lab starts it inside a namespace).
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "govs lab webserver: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := webserver.Serve(ctx, ln, *name); err != nil {
		fmt.Fprintf(stderr, "govs lab webserver: %v\n", err)
		return 1
	}
	return 0
}

// defaultDirectorCmd runs govs itself as each director, with its control
// socket in the lab's state directory.
const defaultDirectorCmd = "{govs} run -f {conf} --socket {state}/{dir}.sock"

func labTest(name, stateDir string, requests int, asJSON, expectSync bool, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := stdout
	if asJSON {
		out = nil
	} else {
		fmt.Fprintf(stdout, "govs lab test %s: %d requests to http://%s/ through the router\n", name, requests, lab.PublicIP)
	}
	rep, err := lab.RunTest(ctx, lab.TestOptions{Name: name, StateDir: stateDir, Requests: requests, ExpectSync: expectSync, Out: out})
	if asJSON && rep != nil {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "govs lab test: %v\n", err)
		return 1
	}
	passed, failed := 0, 0
	for _, c := range rep.Checks {
		if c.Pass {
			passed++
		} else {
			failed++
		}
	}
	if !asJSON {
		fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// labDemo runs the test on a lab just brought up and always takes it down.
func labDemo(name, stateDir string, requests int, asJSON, expectSync bool, stdout, stderr io.Writer, log *slog.Logger) int {
	code := labTest(name, stateDir, requests, asJSON, expectSync, stdout, stderr)
	if err := lab.Down(name, stateDir, log); err != nil {
		fmt.Fprintf(stderr, "govs: %v\n", err)
		return 1
	}
	if !asJSON {
		fmt.Fprintf(stdout, "lab %s is down\n", name)
	}
	return code
}
