// Applies poolguard's GoSQL variables to a database/sql pool the way docs/profiles.md shows, then prints the
// configuration the pool holds. Without arguments a stub driver stands in for a real one: configuring the pool
// never connects. With "session postgres" (lib/pq) or "session pgx" (pgx's stdlib) the pool uses that real driver on
// DATABASE_URL, and prints what a session of it reports and what became of a transaction left idle for IDLE_SLEEP.
package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/lib/pq"
)

type stubDriver struct{}

func (stubDriver) Open(string) (driver.Conn, error) {
	return nil, errors.New("the contract test never connects")
}

func mustInt(name string) int {
	n, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	return n
}

func mustDuration(name string) time.Duration {
	d, err := time.ParseDuration(os.Getenv(name))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	return d
}

func configure(db *sql.DB) time.Duration {
	db.SetMaxOpenConns(mustInt("DB_MAX_OPEN_CONNS"))
	db.SetMaxIdleConns(mustInt("DB_MAX_IDLE_CONNS"))
	db.SetConnMaxLifetime(mustDuration("DB_CONN_MAX_LIFETIME"))
	db.SetConnMaxIdleTime(mustDuration("DB_CONN_MAX_IDLE_TIME"))
	return mustDuration("DB_ACQUIRE_TIMEOUT")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// session opens a connection of the pool, prints its idle_in_transaction_session_timeout, then leaves a
// transaction idle for IDLE_SLEEP and prints what the next statement in it returned.
func session(driverName string) {
	db, err := sql.Open(driverName, os.Getenv("DATABASE_URL"))
	if err != nil {
		fail(err)
	}
	defer db.Close()
	acquire := configure(db)
	ctx, cancel := context.WithTimeout(context.Background(), acquire)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	var timeout string
	if err := conn.QueryRowContext(context.Background(), "SHOW idle_in_transaction_session_timeout").Scan(&timeout); err != nil {
		fail(err)
	}
	fmt.Printf("idle_in_transaction_session_timeout=%s\n", timeout)
	tx, err := conn.BeginTx(context.Background(), nil)
	if err != nil {
		fail(err)
	}
	if _, err := tx.Exec("SELECT 1"); err != nil {
		fail(err)
	}
	time.Sleep(mustDuration("IDLE_SLEEP"))
	if _, err := tx.Exec("SELECT 1"); err != nil {
		fmt.Printf("after_idle=error: %v\n", err)
	} else {
		fmt.Println("after_idle=ok")
	}
	// The connection's Close waits for the transaction to end.
	_ = tx.Rollback()
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "session" {
		session(os.Args[2])
		return
	}
	sql.Register("stub", stubDriver{})
	db, err := sql.Open("stub", "")
	if err != nil {
		fail(err)
	}
	acquire := configure(db)
	ctx, cancel := context.WithTimeout(context.Background(), acquire)
	defer cancel()
	deadline, _ := ctx.Deadline()

	// database/sql exposes only MaxOpenConnections; the other limits are read from the pool itself.
	pool := reflect.ValueOf(db).Elem()
	fmt.Printf("max_open=%d\n", db.Stats().MaxOpenConnections)
	fmt.Printf("max_idle=%d\n", pool.FieldByName("maxIdleCount").Int())
	fmt.Printf("max_lifetime=%s\n", time.Duration(pool.FieldByName("maxLifetime").Int()))
	fmt.Printf("max_idle_time=%s\n", time.Duration(pool.FieldByName("maxIdleTime").Int()))
	fmt.Printf("acquire_timeout=%s\n", time.Until(deadline).Round(10*time.Millisecond))
}
