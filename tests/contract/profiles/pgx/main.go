// Prints the pool configuration pgxpool.ParseConfig builds from a DSN with poolguard's PGX_POOL_* variables
// appended as connection-string parameters, the way docs/profiles.md tells applications to do it. With "session",
// the DSN is DATABASE_URL and a pool built from it connects: it prints what a session reports and what became of a
// transaction left idle for IDLE_SLEEP.
package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// appendPoolParams adds every PGX_POOL_* variable that is set to a URL-form DSN as pool_* query parameters.
func appendPoolParams(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	q := u.Query()
	for env, param := range map[string]string{
		"PGX_POOL_MAX_CONNS":          "pool_max_conns",
		"PGX_POOL_MIN_CONNS":          "pool_min_conns",
		"PGX_POOL_MAX_CONN_LIFETIME":  "pool_max_conn_lifetime",
		"PGX_POOL_MAX_CONN_IDLE_TIME": "pool_max_conn_idle_time",
	} {
		if v, ok := os.LookupEnv(env); ok {
			q.Set(param, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// session takes a connection from the pool, prints its idle_in_transaction_session_timeout, then leaves a
// transaction idle for IDLE_SLEEP and prints what the next statement in it returned.
func session(cfg *pgxpool.Config) {
	ctx := context.Background()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		fail(err)
	}
	defer pool.Close()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		fail(err)
	}
	defer conn.Release()
	var timeout string
	if err := conn.QueryRow(ctx, "SHOW idle_in_transaction_session_timeout").Scan(&timeout); err != nil {
		fail(err)
	}
	fmt.Printf("idle_in_transaction_session_timeout=%s\n", timeout)
	tx, err := conn.Begin(ctx)
	if err != nil {
		fail(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		fail(err)
	}
	sleep, err := time.ParseDuration(os.Getenv("IDLE_SLEEP"))
	if err != nil {
		fail(err)
	}
	time.Sleep(sleep)
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		fmt.Printf("after_idle=error: %v\n", err)
	} else {
		fmt.Println("after_idle=ok")
	}
	_ = tx.Rollback(ctx)
}

func main() {
	base := "postgres://app@127.0.0.1:5432/orders?sslmode=disable"
	connect := len(os.Args) == 2 && os.Args[1] == "session"
	if connect {
		base = os.Getenv("DATABASE_URL")
	}
	dsn, err := appendPoolParams(base)
	if err != nil {
		fail(err)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		fail(err)
	}
	if connect {
		session(cfg)
		return
	}
	fmt.Printf("max_conns=%d\n", cfg.MaxConns)
	fmt.Printf("min_conns=%d\n", cfg.MinConns)
	fmt.Printf("max_conn_lifetime=%s\n", cfg.MaxConnLifetime)
	fmt.Printf("max_conn_idle_time=%s\n", cfg.MaxConnIdleTime)
	fmt.Printf("application_name=%s\n", cfg.ConnConfig.RuntimeParams["application_name"])
	fmt.Printf("options=%s\n", cfg.ConnConfig.RuntimeParams["options"])
}
