// kstatus (sigs.k8s.io/cli-utils, the library Flux uses to wait for health) over the objects of
// deploy/argocd/resource_customizations/poolguard.dev/<Kind>/testdata, which hold each status poolguard writes: every
// fixture has its expected kstatus in expected.yaml, and none is left out. docs/gitops.md, "Flux health", states the
// mapping. The e2e test OperatorE2E.FluxWaitSeesNotObservedCurrentAndStalled runs cmd/kstatus on live objects.
package kstatus

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type expectation struct {
	Status string `json:"status"`
	// A part of kstatus' message: the condition's reason and what to do are what a Flux user reads.
	MessageContains string `json:"messageContains"`
}

func sourceDir(t *testing.T) string {
	if dir := os.Getenv("POOLGUARD_SOURCE_DIR"); dir != "" {
		return dir
	}
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestKstatusOfEveryStatusPoolguardWrites(t *testing.T) {
	root := sourceDir(t)
	raw, err := os.ReadFile("expected.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var expected map[string]expectation
	if err := yaml.UnmarshalStrict(raw, &expected); err != nil {
		t.Fatalf("expected.yaml: %v", err)
	}
	fixtures, err := filepath.Glob(filepath.Join(root, "deploy/argocd/resource_customizations/poolguard.dev/*/testdata/*.yaml"))
	if err != nil || len(fixtures) == 0 {
		t.Fatalf("no fixtures under deploy/argocd (%v)", err)
	}
	seen := map[string]bool{}
	for _, path := range fixtures {
		rel := strings.TrimPrefix(path, filepath.Join(root, "deploy/argocd/resource_customizations/poolguard.dev")+"/")
		seen[rel] = true
		t.Run(rel, func(t *testing.T) {
			want, ok := expected[rel]
			if !ok {
				t.Fatalf("%s has no entry in tests/kstatus/expected.yaml", rel)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// As Flux reads an object: JSON through apimachinery's decoder, so integers stay int64.
			js, err := yaml.YAMLToJSON(data)
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(js); err != nil {
				t.Fatal(err)
			}
			r, err := status.Compute(u)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status.String() != want.Status || !strings.Contains(r.Message, want.MessageContains) {
				t.Errorf("kstatus %s %q, want %s containing %q", r.Status, r.Message, want.Status, want.MessageContains)
			}
		})
	}
	var stale []string
	for rel := range expected {
		if !seen[rel] {
			stale = append(stale, rel)
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Errorf("expected.yaml names fixtures that do not exist: %v", stale)
	}
}
