package testpeers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
)

// InfluxDB is a running InfluxDB 1.8.10 with authentication on, serving the
// 2.x write and Flux query API. Token is "user:password" and Bucket is
// "database/retention-policy", as the 2.x API of 1.8 wants them.
type InfluxDB struct {
	URL    string
	Token  string
	Org    string
	Bucket string

	t        testing.TB
	bin      string
	confPath string
	addr     string
	mu       sync.Mutex
	proc     *process
}

const (
	influxUser     = "lookout"
	influxPassword = "lookout-test-password"
	influxDatabase = "lookout"
)

// InfluxdPath finds the influxd 1.8.10 binary: $LOOKOUT_INFLUXD, PATH, or
// where `go install` put it.
func InfluxdPath() (string, error) {
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	return FindBinary("influxd", "LOOKOUT_INFLUXD", filepath.Join(gopath, "bin", "influxd"))
}

// StartInfluxDB starts InfluxDB for the test, creates the user and the
// database, and stops it when the test ends.
func StartInfluxDB(t testing.TB) *InfluxDB {
	t.Helper()
	bin, err := InfluxdPath()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var db *InfluxDB
	// A free port can be taken by another test's peer between our look and
	// influxd's bind (it binds two): try again on new ports when it exits.
	for attempt := 1; ; attempt++ {
		addr := FreeAddr(t)
		conf := fmt.Sprintf(`reporting-disabled = true
bind-address = %q
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[http]
  bind-address = %q
  auth-enabled = true
  flux-enabled = true
  log-enabled = false
[monitor]
  store-enabled = false
[logging]
  level = "warn"
[continuous_queries]
  enabled = false
`, FreeAddr(t), filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), addr)
		db = &InfluxDB{URL: "http://" + addr, Token: influxUser + ":" + influxPassword, Org: "lookout",
			Bucket: influxDatabase + "/autogen", t: t, bin: bin, addr: addr, confPath: writeFile(t, dir, "influxdb.conf", conf)}
		err := db.start()
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("influxd did not start (attempt %d), trying new ports: %v", attempt, err)
	}
	t.Cleanup(db.Stop)
	// With auth on and no user yet, InfluxDB 1.x admits exactly one query:
	// the creation of the first admin.
	db.query(t, "", fmt.Sprintf("CREATE USER %s WITH PASSWORD '%s' WITH ALL PRIVILEGES", influxUser, influxPassword))
	// Under load influxd may take a moment before the new user is known to
	// its HTTP authenticator; the database is made once it is.
	// The database counts as made once SHOW DATABASES lists it: a 200 to
	// CREATE DATABASE can carry the statement's error in its body.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := db.tryQuery(influxUser, "CREATE DATABASE "+influxDatabase)
		if err == nil {
			var body string
			if body, err = db.queryBody(influxUser, "SHOW DATABASES"); err == nil && !strings.Contains(body, `["`+influxDatabase+`"]`) {
				err = fmt.Errorf("database %s not listed yet: %s", influxDatabase, body)
			}
		}
		if err == nil {
			return db
		}
		if time.Now().After(deadline) {
			t.Fatalf("influxdb: creating database %s: %v", influxDatabase, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (db *InfluxDB) tryQuery(user, q string) error {
	_, err := db.queryBody(user, q)
	return err
}

// queryBody runs an InfluxQL statement and returns the answer's body; a
// statement's own error (given with status 200) is an error too.
func (db *InfluxDB) queryBody(user, q string) (string, error) {
	form := url.Values{"q": {q}}
	req, _ := http.NewRequest(http.MethodPost, db.URL+"/query", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, influxPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, body)
	}
	if strings.Contains(string(body), `"error"`) {
		return "", fmt.Errorf("%s", body)
	}
	return string(body), nil
}

func (db *InfluxDB) query(t testing.TB, user, q string) {
	t.Helper()
	form := url.Values{"q": {q}}
	req, _ := http.NewRequest(http.MethodPost, db.URL+"/query", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, influxPassword)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("influxdb %q: %v", q, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("influxdb %q: %s", q, resp.Status)
	}
}

// Start (re)starts InfluxDB on its port with its data kept.
func (db *InfluxDB) Start() {
	db.t.Helper()
	if err := db.start(); err != nil {
		db.t.Fatal(err)
	}
}

func (db *InfluxDB) start() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.proc != nil {
		if ok, _ := db.proc.exited(); !ok {
			return nil
		}
	}
	p, err := startProcess("influxd", db.bin, "run", "-config", db.confPath)
	if err != nil {
		return err
	}
	client := influxdb2.NewClient(db.URL, db.Token)
	defer client.Close()
	err = p.waitFor(30*time.Second, func(ctx context.Context) error {
		ok, err := client.Ping(ctx)
		if err == nil && !ok {
			err = errNotRunning
		}
		return err
	})
	if err != nil {
		p.stop(time.Second)
		return err
	}
	db.proc = p
	return nil
}

// Stop stops InfluxDB; Start brings it back with its data.
func (db *InfluxDB) Stop() {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.proc != nil {
		db.proc.stop(10 * time.Second)
	}
}

// Kill ends the program at once (SIGKILL), without a clean shutdown; Start
// brings it back.
func (db *InfluxDB) Kill() {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.proc != nil {
		db.proc.kill()
	}
}
