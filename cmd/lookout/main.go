// Command lookout is the Lookout server: `lookout serve` runs the command
// centre, `lookout version` prints the version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/lookout-cc/lookout/configs"
	"github.com/lookout-cc/lookout/internal/audit"
	"github.com/lookout-cc/lookout/internal/config"
	"github.com/lookout-cc/lookout/internal/procs"
	"github.com/lookout-cc/lookout/internal/server"
	"github.com/lookout-cc/lookout/internal/sqldb"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage:
  lookout serve [--config FILE]          run the server (without --config: the embedded default)
  lookout audit verify [--config FILE]   check the audit log's hash chain
  lookout version                        print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the exit, for tests: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "version":
		fmt.Fprintf(stdout, "lookout %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "serve":
		if err := serve(args[1:], stdout, stderr); err != nil {
			fmt.Fprintf(stderr, "lookout: %s\n", oneLine(err))
			return 1
		}
		return 0
	case "audit":
		if len(args) < 2 || args[1] != "verify" {
			fmt.Fprintf(stderr, "lookout: audit takes one command: verify\n%s", usage)
			return 2
		}
		n, err := verifyAudit(args[2:], stderr)
		if err != nil {
			fmt.Fprintf(stderr, "lookout: audit log: %s\n", oneLine(err))
			return 1
		}
		fmt.Fprintf(stdout, "audit log intact: %d entries, each following the one before\n", n)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "lookout: unknown command %q\n%s", args[0], usage)
		return 2
	}
}

// gcPercent is the garbage collector's target for the server, unless the
// GOGC environment variable sets one: the heap may grow to three times
// what is live before a collection, not twice. The server's live heap is
// small (some 35 MB with a thousand devices connected) and a burst of
// commands allocates half of that, so Go's default collected during most
// bursts, and a collection in the middle of one held back its last
// commands by tens of milliseconds (docs/BENCHMARKS.md, "Commands").
const gcPercent = 200

func serve(args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("config", "", "YAML configuration file (default: the embedded configs/lookout.yaml)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", flags.Args())
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv := server.New(server.Params{Config: cfg, Log: log, Version: version, Notice: stdout})
	if err := srv.Start(ctx); err != nil {
		return err
	}
	// The scheduler's Ps follow the load, unless the environment fixes
	// their number (internal/procs says why).
	go procs.Run(ctx, procs.Config{Log: log})
	// SIGUSR1 starts (a second one ends) a simulated flood at the demo's
	// reservoirs, to show alerts rising through their severities.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer func() { signal.Stop(usr1); close(usr1) }()
	go func() {
		for range usr1 {
			if !srv.TriggerDemoFlood() {
				log.Warn("SIGUSR1 starts a simulated flood of the demo, which is not running")
			}
		}
	}()
	<-ctx.Done()
	stop() // a second signal now ends the process at once
	log.Info("stopping", "limit", server.StopTimeout)
	stopCtx, cancel := context.WithTimeout(context.Background(), server.StopTimeout)
	defer cancel()
	if err := srv.Stop(stopCtx); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// verifyAudit checks the hash chain of the audit log in the configured data
// directory. It only reads; the server may be running meanwhile.
func verifyAudit(args []string, stderr io.Writer) (int64, error) {
	flags := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("config", "", "YAML configuration file (default: the embedded configs/lookout.yaml)")
	if err := flags.Parse(args); err != nil {
		return 0, err
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return 0, err
	}
	path := filepath.Join(cfg.DataDir, sqldb.FileName)
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("no state database at %s", path)
	}
	db, err := sqldb.OpenFile(path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return audit.Verify(context.Background(), db)
}

func loadConfig(path string) (config.Config, error) {
	if path != "" {
		return config.LoadFile(path, os.Getenv)
	}
	data, err := fs.ReadFile(configs.Files, configs.DefaultFile)
	if err != nil {
		return config.Config{}, err
	}
	cfg, err := config.Parse(data, os.Getenv)
	if err != nil {
		return config.Config{}, fmt.Errorf("embedded %s: %w", configs.DefaultFile, err)
	}
	return cfg, nil
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated already
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// oneLine keeps a startup failure to one line, as operators read it.
func oneLine(err error) string {
	var ve *config.ValidationError
	if errors.As(err, &ve) {
		return ve.Error()
	}
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
