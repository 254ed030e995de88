// Prints the pool configuration pgxpool.ParseConfig builds from a DSN with poolguard's PGX_POOL_* variables
// appended as connection-string parameters, the way docs/profiles.md tells applications to do it.
package main

import (
	"fmt"
	"net/url"
	"os"

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

func main() {
	dsn, err := appendPoolParams("postgres://app@127.0.0.1:5432/orders?sslmode=disable")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("max_conns=%d\n", cfg.MaxConns)
	fmt.Printf("min_conns=%d\n", cfg.MinConns)
	fmt.Printf("max_conn_lifetime=%s\n", cfg.MaxConnLifetime)
	fmt.Printf("max_conn_idle_time=%s\n", cfg.MaxConnIdleTime)
	fmt.Printf("application_name=%s\n", cfg.ConnConfig.RuntimeParams["application_name"])
}
