// peer: the operator a team would write instead of poolguard, for the benchmark's comparison. A minimal
// controller-runtime manager that delivers a ConnectionPoolPolicy's pool settings as env entries (the Env
// delivery of the Generic profile) to the Deployments its spec.selector.matchLabels picks, with server-side apply
// under the field manager "peer". No budget, validation, status or usage checks: a lower bound of the cost.
//
// With --tuned it is the same job as a performance-minded controller-runtime team would ship it (tuned.go): a
// cache that holds only the fields the reconcile reads and only the two kinds it reads, protobuf for built-in
// types, and Deployment events mapped to the policies that select them. The naive mode (the default) is unchanged.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

var policyGVK = schema.GroupVersionKind{Group: "poolguard.dev", Version: "v1alpha1", Kind: "ConnectionPoolPolicy"}

const fieldManager = "peer"

func newPolicy() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(policyGVK)
	return u
}

type envVar struct{ name, value string }

// desiredEnv mirrors poolguard's Generic profile: names and units (milliseconds) of the defaults.
func desiredEnv(pol *unstructured.Unstructured, ns, workload string) []envVar {
	num := func(def int64, path ...string) string {
		v, found, _ := unstructured.NestedInt64(pol.Object, append([]string{"spec", "pool"}, path...)...)
		if !found {
			v = def
		}
		return strconv.FormatInt(v, 10)
	}
	dur := func(def time.Duration, key string) string {
		s, found, _ := unstructured.NestedString(pol.Object, "spec", "pool", key)
		d := def
		if found {
			if p, err := time.ParseDuration(s); err == nil {
				d = p
			}
		}
		return strconv.FormatInt(d.Milliseconds(), 10)
	}
	return []envVar{
		{"POOL_MAX_SIZE", num(10, "maxSize")},
		{"POOL_MIN_IDLE", num(0, "minIdle")},
		{"POOL_ACQUIRE_TIMEOUT_MS", dur(30*time.Second, "acquireTimeout")},
		{"POOL_IDLE_TIMEOUT_MS", dur(10*time.Minute, "idleTimeout")},
		{"POOL_MAX_LIFETIME_MS", dur(30*time.Minute, "maxLifetime")},
		{"POOL_LEAK_DETECTION_THRESHOLD_MS", dur(0, "leakDetectionThreshold")},
		{"PGAPPNAME", ns + "/" + workload},
	}
}

func settingsHash(env []envVar) string {
	h := sha256.New()
	for _, e := range env {
		fmt.Fprintf(h, "%s=%s\n", e.name, e.value)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func inSync(d *appsv1.Deployment, env []envVar) bool {
	for _, c := range d.Spec.Template.Spec.Containers {
		have := map[string]string{}
		for _, e := range c.Env {
			have[e.Name] = e.Value
		}
		for _, e := range env {
			if v, ok := have[e.name]; !ok || v != e.value {
				return false
			}
		}
	}
	return true
}

type reconciler struct {
	client.Client
	// listOpts are added to the Deployment list (the tuned mode reads the cached objects without copying them).
	listOpts []client.ListOption
}

func (r *reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	pol := newPolicy()
	if err := r.Get(ctx, req.NamespacedName, pol); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	matchLabels, _, err := unstructured.NestedStringMap(pol.Object, "spec", "selector", "matchLabels")
	if err != nil || len(matchLabels) == 0 {
		return reconcile.Result{}, nil
	}
	var list appsv1.DeploymentList
	opts := append([]client.ListOption{client.InNamespace(req.Namespace), client.MatchingLabels(matchLabels)}, r.listOpts...)
	if err := r.List(ctx, &list, opts...); err != nil {
		return reconcile.Result{}, err
	}
	for i := range list.Items {
		d := &list.Items[i]
		env := desiredEnv(pol, d.Namespace, d.Name)
		if inSync(d, env) {
			continue
		}
		containers := []any{}
		for _, c := range d.Spec.Template.Spec.Containers {
			entries := []any{}
			for _, e := range env {
				entries = append(entries, map[string]any{"name": e.name, "value": e.value})
			}
			containers = append(containers, map[string]any{"name": c.Name, "env": entries})
		}
		body := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1",
			"kind":       "Deployment",
			"metadata": map[string]any{
				"name": d.Name, "namespace": d.Namespace,
				"annotations": map[string]any{"poolguard.dev/policy": pol.GetName()},
			},
			"spec": map[string]any{"template": map[string]any{
				"metadata": map[string]any{"annotations": map[string]any{"poolguard.dev/settings-hash": settingsHash(env)}},
				"spec":     map[string]any{"containers": containers},
			}},
		}}
		//nolint:staticcheck // the unstructured apply patch is what most operators of this size still use
		if err := r.Patch(ctx, body, client.Apply, client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
			return reconcile.Result{}, err
		}
	}
	return reconcile.Result{}, nil
}

func main() {
	var probeAddr, leaseNamespace string
	var workers, burst int
	var qps float64
	var tuned bool
	flag.StringVar(&probeAddr, "health-probe-bind-address", "127.0.0.1:8081", "address of /healthz and /readyz")
	flag.StringVar(&leaseNamespace, "leader-election-namespace", "default", "namespace of the leader-election Lease")
	flag.IntVar(&workers, "workers", 4, "concurrent reconciles")
	flag.Float64Var(&qps, "qps", 20, "client-side request rate limit")
	flag.IntVar(&burst, "burst", 30, "client-side request burst")
	flag.BoolVar(&tuned, "tuned", false, "the tuned peer: trimmed, limited cache, protobuf, selector-aware mapping (tuned.go)")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("peer")

	cfg := ctrl.GetConfigOrDie()
	cfg.UserAgent = "poolguard-bench-peer"
	cfg.QPS = float32(qps)
	cfg.Burst = burst
	leaderElectionID := "peer-leader"
	if tuned {
		tuneConfig(cfg)
		leaderElectionID = tunedLeaderElectionID
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		log.Error(err, "scheme")
		os.Exit(1)
	}
	mgrOpts := ctrl.Options{
		Scheme: scheme,
		// Unstructured reads go to the API server unless asked otherwise; the policies come from the cache too.
		Client:                        client.Options{Cache: &client.CacheOptions{Unstructured: true}},
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        probeAddr,
		LeaderElection:                true,
		LeaderElectionID:              leaderElectionID,
		LeaderElectionNamespace:       leaseNamespace,
		LeaderElectionReleaseOnCancel: true,
	}
	if tuned {
		mgrOpts.Cache = tunedCacheOptions()
	}
	mgr, err := ctrl.NewManager(cfg, mgrOpts)
	if err != nil {
		log.Error(err, "manager")
		os.Exit(1)
	}
	ctx := ctrl.SetupSignalHandler()
	// Start both informers with the cache (before leadership), so /readyz means "caches synced" as poolguard's does.
	for _, obj := range []client.Object{newPolicy(), &appsv1.Deployment{}} {
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			log.Error(err, "informer")
			os.Exit(1)
		}
	}
	if err := mgr.AddHealthzCheck("ping", func(*http.Request) error { return nil }); err != nil {
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("caches", func(req *http.Request) error {
		c, cancel := context.WithTimeout(req.Context(), 50*time.Millisecond)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(c) {
			return errors.New("caches not synced")
		}
		return nil
	}); err != nil {
		os.Exit(1)
	}

	r := &reconciler{Client: mgr.GetClient()}
	if tuned {
		r.listOpts = []client.ListOption{client.UnsafeDisableDeepCopy}
		err = tunedController(mgr, r, workers)
	} else {
		err = naiveController(mgr, r, workers)
	}
	if err != nil {
		log.Error(err, "controller")
		os.Exit(1)
	}
	if tuned {
		log.Info("starting", "mode", "tuned")
	} else {
		log.Info("starting")
	}
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "manager stopped")
		os.Exit(1)
	}
}

// naiveController: every event of a Deployment enqueues every policy of its namespace.
func naiveController(mgr ctrl.Manager, r *reconciler, workers int) error {
	policiesOfNamespace := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(policyGVK.GroupVersion().WithKind("ConnectionPoolPolicyList"))
		if err := r.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
			return nil
		}
		out := make([]reconcile.Request, 0, len(list.Items))
		for _, p := range list.Items {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&p)})
		}
		return out
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("connectionpoolpolicy").
		For(newPolicy()).
		Watches(&appsv1.Deployment{}, policiesOfNamespace).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}
