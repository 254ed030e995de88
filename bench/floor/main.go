// floor: the least any client can spend on poolguard's writes. It server-side-applies the same Env delivery
// (the Generic profile's seven env entries, the policy annotation and the pod-template settings hash) to every
// Deployment carrying the bench's policy label, with a fixed number of concurrent HTTP/1.1 connections (poolguard's
// worker count) and no client-side rate limit, using only the standard library and the admin client certificate.
//
//	floor -server URL -ca FILE -cert FILE -key FILE -namespaces a,b,c -max-size N [-concurrency 4]
//
// Prints one JSON line: {"writes":N,"errors":N,"seconds":S,"first_start":RFC3339,"last_end":RFC3339}.
// Listing the Deployments happens before the clock starts; only the writes are timed.
package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const policyLabel = "bench.poolguard.dev/policy"

type target struct{ ns, name, policy string }

type deploymentList struct {
	Items []struct {
		Metadata struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Name string `json:"name"`
					} `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	} `json:"items"`
}

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "floor: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	server := flag.String("server", "", "API server URL")
	caFile := flag.String("ca", "", "CA certificate")
	certFile := flag.String("cert", "", "client certificate")
	keyFile := flag.String("key", "", "client key")
	namespaces := flag.String("namespaces", "", "comma-separated namespaces")
	maxSize := flag.Int("max-size", 10, "POOL_MAX_SIZE to write")
	concurrency := flag.Int("concurrency", 4, "concurrent writers")
	manager := flag.String("field-manager", "bench-floor", "server-side apply field manager")
	flag.Parse()

	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		die("%v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		die("%v", err)
	}
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
		MaxIdleConnsPerHost: *concurrency,
		MaxConnsPerHost:     *concurrency,
	}
	client := &http.Client{Transport: transport, Timeout: 60 * time.Second}
	do := func(method, path, ctype string, body []byte) ([]byte, int, error) {
		req, err := http.NewRequest(method, *server+path, bytes.NewReader(body))
		if err != nil {
			return nil, 0, err
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "poolguard-bench-floor")
		resp, err := client.Do(req)
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return b, resp.StatusCode, err
	}

	var targets []target
	containers := map[string][]string{}
	for _, ns := range strings.Split(*namespaces, ",") {
		if ns == "" {
			continue
		}
		b, code, err := do("GET", "/apis/apps/v1/namespaces/"+ns+"/deployments?labelSelector="+url.QueryEscape(policyLabel), "", nil)
		if err != nil || code != 200 {
			die("listing deployments in %s: %v %d", ns, err, code)
		}
		var list deploymentList
		if err := json.Unmarshal(b, &list); err != nil {
			die("%v", err)
		}
		for _, it := range list.Items {
			t := target{it.Metadata.Namespace, it.Metadata.Name, it.Metadata.Labels[policyLabel]}
			targets = append(targets, t)
			for _, c := range it.Spec.Template.Spec.Containers {
				containers[t.ns+"/"+t.name] = append(containers[t.ns+"/"+t.name], c.Name)
			}
		}
	}

	work := make(chan target)
	var writes, failures atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < *concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range work {
				env := []map[string]string{
					{"name": "POOL_MAX_SIZE", "value": strconv.Itoa(*maxSize)},
					{"name": "POOL_MIN_IDLE", "value": "0"},
					{"name": "POOL_ACQUIRE_TIMEOUT_MS", "value": "30000"},
					{"name": "POOL_IDLE_TIMEOUT_MS", "value": "600000"},
					{"name": "POOL_MAX_LIFETIME_MS", "value": "1800000"},
					{"name": "POOL_LEAK_DETECTION_THRESHOLD_MS", "value": "0"},
					{"name": "PGAPPNAME", "value": t.ns + "/" + t.name},
				}
				h := sha256.New()
				for _, e := range env {
					fmt.Fprintf(h, "%s=%s\n", e["name"], e["value"])
				}
				var cs []map[string]any
				for _, c := range containers[t.ns+"/"+t.name] {
					cs = append(cs, map[string]any{"name": c, "env": env})
				}
				body, _ := json.Marshal(map[string]any{
					"apiVersion": "apps/v1", "kind": "Deployment",
					"metadata": map[string]any{"name": t.name, "namespace": t.ns,
						"annotations": map[string]string{"poolguard.dev/policy": t.policy}},
					"spec": map[string]any{"template": map[string]any{
						"metadata": map[string]any{"annotations": map[string]string{
							"poolguard.dev/settings-hash": hex.EncodeToString(h.Sum(nil))[:16]}},
						"spec": map[string]any{"containers": cs}}},
				})
				path := "/apis/apps/v1/namespaces/" + t.ns + "/deployments/" + t.name + "?fieldManager=" + *manager + "&force=true"
				_, code, err := do("PATCH", path, "application/apply-patch+yaml", body)
				if err != nil || code != 200 {
					failures.Add(1)
					fmt.Fprintf(os.Stderr, "floor: apply %s/%s: %v %d\n", t.ns, t.name, err, code)
					continue
				}
				writes.Add(1)
			}
		}()
	}
	for _, t := range targets {
		work <- t
	}
	close(work)
	wg.Wait()
	end := time.Now()
	out, _ := json.Marshal(map[string]any{
		"writes": writes.Load(), "errors": failures.Load(), "seconds": end.Sub(start).Seconds(),
		"first_start": start.UTC().Format(time.RFC3339Nano), "last_end": end.UTC().Format(time.RFC3339Nano),
	})
	fmt.Println(string(out))
	if failures.Load() > 0 {
		os.Exit(1)
	}
}
