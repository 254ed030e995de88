// Applies poolguard's GoSQL variables to a database/sql pool the way docs/profiles.md shows, then prints the
// configuration the pool holds. A stub driver stands in for a real one: configuring the pool never connects.
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

func main() {
	sql.Register("stub", stubDriver{})
	db, err := sql.Open("stub", "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	db.SetMaxOpenConns(mustInt("DB_MAX_OPEN_CONNS"))
	db.SetMaxIdleConns(mustInt("DB_MAX_IDLE_CONNS"))
	db.SetConnMaxLifetime(mustDuration("DB_CONN_MAX_LIFETIME"))
	db.SetConnMaxIdleTime(mustDuration("DB_CONN_MAX_IDLE_TIME"))
	acquire := mustDuration("DB_ACQUIRE_TIMEOUT")
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
