// The Argo CD health checks of deploy/argocd/resource_customizations, run the way Argo CD runs a check from
// argocd-cm (util/lua in Argo CD): gopher-lua with only the package, base and table libraries, the object as the
// global `obj`, one second at most, and a returned table whose status and message are compared with the
// health_test.yaml beside the script (Argo CD's own fixture format). docs/gitops.md, "Argo CD health", carries
// the argocd-cm keys, which must equal the scripts.
package argocd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

const group = "poolguard.dev"

// Kinds of crds/ that need no health check, and why.
var withoutHealth = map[string]string{
	// poolguard keeps it as a ValidatingAdmissionPolicy's parameters for a ClusterConnectionBudget: it is never in
	// Git and has no status.
	"ConnectionAllotment": "a parameter object poolguard writes",
}

// Argo CD's health status codes (gitops-engine's health package); anything else is reported Unknown.
var statusCodes = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type healthTests struct {
	Tests []struct {
		HealthStatus healthStatus `json:"healthStatus"`
		InputPath    string       `json:"inputPath"`
	} `json:"tests"`
}

func sourceDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("POOLGUARD_SOURCE_DIR"); dir != "" {
		return dir
	}
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func customizations(t *testing.T) string {
	return filepath.Join(sourceDir(t), "deploy", "argocd", "resource_customizations", group)
}

// The kind folders under deploy/argocd/resource_customizations/poolguard.dev, sorted.
func kindDirs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(customizations(t))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range entries {
		if e.IsDir() {
			kinds = append(kinds, e.Name())
		}
	}
	sort.Strings(kinds)
	if len(kinds) == 0 {
		t.Fatalf("no kind folder in %s", customizations(t))
	}
	return kinds
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// toLua turns a decoded JSON or YAML value into a Lua value as Argo CD's decodeValue does: objects and arrays
// become tables, numbers LNumber, null nil.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case []any:
		table := l.CreateTable(len(v), 0)
		for _, item := range v {
			table.Append(toLua(l, item))
		}
		return table
	case map[string]any:
		table := l.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), toLua(l, item))
		}
		return table
	}
	return lua.LNil
}

// runHealth runs script on the object in input as Argo CD runs a health check set in argocd-cm.
func runHealth(script string, input []byte) (healthStatus, error) {
	object := map[string]any{}
	if err := yaml.Unmarshal(input, &object); err != nil {
		return healthStatus{}, err
	}
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return healthStatus{}, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, object))
	if err := l.DoString(script); err != nil {
		return healthStatus{}, err
	}
	table, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return healthStatus{}, fmt.Errorf("the script returned %s, not a table", l.Get(-1).Type())
	}
	var hs healthStatus
	for field, into := range map[string]*string{"status": &hs.Status, "message": &hs.Message} {
		switch v := table.RawGetString(field).(type) {
		case lua.LString:
			*into = string(v)
		case *lua.LNilType:
		default:
			return healthStatus{}, fmt.Errorf("%s is a %s, not a string", field, v.Type())
		}
	}
	if !statusCodes[hs.Status] {
		return healthStatus{}, fmt.Errorf("status %q is not an Argo CD health status", hs.Status)
	}
	return hs, nil
}

func TestHealthChecks(t *testing.T) {
	for _, kind := range kindDirs(t) {
		dir := filepath.Join(customizations(t), kind)
		script := string(readFile(t, filepath.Join(dir, "health.lua")))
		var suite healthTests
		if err := yaml.UnmarshalStrict(readFile(t, filepath.Join(dir, "health_test.yaml")), &suite); err != nil {
			t.Fatalf("%s/health_test.yaml: %v", kind, err)
		}
		if len(suite.Tests) == 0 {
			t.Errorf("%s/health_test.yaml has no test", kind)
		}
		tested := map[string]bool{}
		for _, tc := range suite.Tests {
			tested[filepath.Clean(tc.InputPath)] = true
			t.Run(kind+"/"+tc.InputPath, func(t *testing.T) {
				got, err := runHealth(script, readFile(t, filepath.Join(dir, tc.InputPath)))
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.HealthStatus {
					t.Errorf("got\n  status: %s\n  message: %s\nwant\n  status: %s\n  message: %s", got.Status, got.Message,
						tc.HealthStatus.Status, tc.HealthStatus.Message)
				}
			})
		}
		inputs, _ := filepath.Glob(filepath.Join(dir, "testdata", "*.yaml"))
		for _, input := range inputs {
			if rel := filepath.Join("testdata", filepath.Base(input)); !tested[rel] {
				t.Errorf("%s/%s is in no test of %s/health_test.yaml", kind, rel, kind)
			}
		}
	}
}

// The three kinds share one script: a ClusterConnectionBudget's conditions are a subset of a policy's.
func TestOneScriptForEveryKind(t *testing.T) {
	kinds := kindDirs(t)
	first := readFile(t, filepath.Join(customizations(t), kinds[0], "health.lua"))
	for _, kind := range kinds[1:] {
		if !bytes.Equal(readFile(t, filepath.Join(customizations(t), kind, "health.lua")), first) {
			t.Errorf("%s/health.lua differs from %s/health.lua: the kinds share one script", kind, kinds[0])
		}
	}
}

func TestEveryKindHasAHealthCheck(t *testing.T) {
	crds, _ := filepath.Glob(filepath.Join(sourceDir(t), "crds", "*.yaml"))
	if len(crds) == 0 {
		t.Fatal("no CRD in crds/")
	}
	want := map[string]bool{}
	for _, path := range crds {
		var crd struct {
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(readFile(t, path), &crd); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if kind := crd.Spec.Names.Kind; crd.Spec.Group == group && withoutHealth[kind] == "" {
			want[kind] = true
		}
	}
	have := map[string]bool{}
	for _, kind := range kindDirs(t) {
		have[kind] = true
		if !want[kind] {
			t.Errorf("deploy/argocd has a health check for %s, which crds/ does not serve (or lists as needing none)", kind)
		}
	}
	for kind := range want {
		if !have[kind] {
			t.Errorf("crds/ serves %s/%s, which has no deploy/argocd/resource_customizations/%s/%s/health.lua", group, kind,
				group, kind)
		}
	}
}

// docs/gitops.md gives the argocd-cm keys; each must be the script of its kind, byte for byte.
func TestDocsCarryTheScripts(t *testing.T) {
	doc := string(readFile(t, filepath.Join(sourceDir(t), "docs", "gitops.md")))
	_, section, found := strings.Cut(doc, "\n## Argo CD health\n")
	if !found {
		t.Fatal(`docs/gitops.md has no section "## Argo CD health"`)
	}
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var configMap string
	for _, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(section, -1) {
		if strings.Contains(block[1], "resource.customizations.health.") {
			configMap = block[1]
		}
	}
	if configMap == "" {
		t.Fatal(`the section "Argo CD health" of docs/gitops.md has no yaml block with resource.customizations.health keys`)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal([]byte(configMap), &cm); err != nil {
		t.Fatalf("the argocd-cm snippet in docs/gitops.md: %v", err)
	}
	prefix := "resource.customizations.health." + group + "_"
	kinds := map[string]bool{}
	for _, kind := range kindDirs(t) {
		kinds[kind] = true
		script := string(readFile(t, filepath.Join(customizations(t), kind, "health.lua")))
		got, ok := cm.Data[prefix+kind]
		if !ok {
			t.Errorf("docs/gitops.md: argocd-cm has no key %s%s", prefix, kind)
		} else if got != script {
			t.Errorf("docs/gitops.md: argocd-cm key %s%s differs from deploy/argocd/resource_customizations/%s/%s/health.lua",
				prefix, kind, group, kind)
		}
	}
	for key := range cm.Data {
		if strings.HasPrefix(key, prefix) && !kinds[strings.TrimPrefix(key, prefix)] {
			t.Errorf("docs/gitops.md: argocd-cm key %s names no kind of deploy/argocd", key)
		}
	}
}
