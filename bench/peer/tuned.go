package main

// The tuned peer (--tuned): the same job, the same server-side apply body under the same field manager, as a
// performance-minded controller-runtime team would ship it.
//
//   - The cache holds only the two kinds the reconcile reads (Deployments, ConnectionPoolPolicies: ByObject, and
//     ReaderFailOnMissingInformer so no read can start an informer for anything else), in every namespace (the
//     workloads are spread over many).
//   - Each cached object is trimmed by a transform before it is stored: no managedFields, and of a Deployment only
//     name, namespace, labels, uid, resourceVersion and each container's name and env entries (name and value);
//     of a policy its metadata and spec. The reconcile and the event mapping read the cache only, without copies
//     (UnsafeDisableDeepCopy: nothing mutates what it reads).
//   - Protobuf for built-in types, on every client the manager makes (the Lease and Event clients too);
//     the unstructured policies stay JSON (the dynamic client forces it).
//   - A Deployment event enqueues only the policies whose selector matches it (old or new labels), and an update
//     only when what the reconcile reads changed (labels, container names or env), so status churn and rollouts
//     enqueue nothing.
//
// GOGC and GOMEMLIMIT are left at Go's defaults on purpose: the bench measures the defaults. A team would
// typically set GOMEMLIMIT to about 80-90% of the container's memory limit (from the Downward API's
// resources.limits.memory) and might lower GOGC (e.g. 50) to trade CPU for a smaller heap between collections,
// or raise it (with GOMEMLIMIT as the ceiling) to spend less CPU on collections during the initial list.

import (
	"context"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

const (
	tunedUserAgent        = "poolguard-bench-peer-tuned"
	tunedLeaderElectionID = "peer-tuned-leader"
)

// tuneConfig: protobuf for built-in types (controller-runtime's typed clients already pick it for the types they
// know; this extends it to the clients client-go builds from the same config: the leader-election Lease client and
// the Event recorder). The dynamic client behind unstructured objects overrides it with JSON.
func tuneConfig(cfg *rest.Config) {
	cfg.UserAgent = tunedUserAgent
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
}

func tunedCacheOptions() cache.Options {
	noCopy := true
	return cache.Options{
		// Only kinds listed in ByObject are ever cached: a read of anything else fails instead of starting an
		// informer. DefaultNamespaces stays unset (every namespace).
		ReaderFailOnMissingInformer: true,
		DefaultTransform:            cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}: {Transform: trimDeployment, UnsafeDisableDeepCopy: &noCopy},
			newPolicy():          {Transform: trimPolicy, UnsafeDisableDeepCopy: &noCopy},
		},
	}
}

var _ toolscache.TransformFunc = trimDeployment

// trimDeployment keeps what the reconcile and the mapping read. The result is a new object, so the decoded one
// (managedFields, status, annotations, the rest of the pod template) is garbage at once. Idempotent.
func trimDeployment(obj any) (any, error) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return obj, nil // a DeletedFinalStateUnknown tombstone or anything else: as it is
	}
	out := &appsv1.Deployment{
		TypeMeta: d.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name,
			Namespace:       d.Namespace,
			Labels:          d.Labels,
			UID:             d.UID,
			ResourceVersion: d.ResourceVersion,
		},
	}
	if n := len(d.Spec.Template.Spec.Containers); n > 0 {
		cs := make([]corev1.Container, n)
		for i, c := range d.Spec.Template.Spec.Containers {
			cs[i].Name = c.Name
			if len(c.Env) > 0 {
				env := make([]corev1.EnvVar, len(c.Env))
				for j, e := range c.Env {
					env[j] = corev1.EnvVar{Name: e.Name, Value: e.Value} // valueFrom is never read
				}
				cs[i].Env = env
			}
		}
		out.Spec.Template.Spec.Containers = cs
	}
	return out, nil
}

// trimPolicy keeps apiVersion, kind, metadata without managedFields, and spec.
func trimPolicy(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	for k := range u.Object {
		if k != "apiVersion" && k != "kind" && k != "metadata" && k != "spec" {
			delete(u.Object, k)
		}
	}
	if m, ok := u.Object["metadata"].(map[string]any); ok {
		delete(m, "managedFields")
	}
	return u, nil
}

// readFieldsChanged: an update enqueues only if the labels or the containers (as trimmed: names and env) changed.
var readFieldsChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*appsv1.Deployment)
		n, ok2 := e.ObjectNew.(*appsv1.Deployment)
		if !ok1 || !ok2 {
			return true
		}
		return !maps.Equal(o.Labels, n.Labels) ||
			!equality.Semantic.DeepEqual(o.Spec.Template.Spec.Containers, n.Spec.Template.Spec.Containers)
	},
}

// tunedController: a Deployment event enqueues the policies of its namespace whose selector matches it
// (controller-runtime calls the map function with the old and the new object of an update, so a Deployment that
// stops matching still enqueues its former policy), read from the cache without copies.
func tunedController(mgr ctrl.Manager, r *reconciler, workers int) error {
	selectingPolicies := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(policyGVK.GroupVersion().WithKind("ConnectionPoolPolicyList"))
		if err := r.List(ctx, list, client.InNamespace(obj.GetNamespace()), client.UnsafeDisableDeepCopy); err != nil {
			return nil
		}
		have := labels.Set(obj.GetLabels())
		var out []reconcile.Request
		for i := range list.Items {
			p := &list.Items[i]
			matchLabels, _, err := unstructured.NestedStringMap(p.Object, "spec", "selector", "matchLabels")
			if err != nil || len(matchLabels) == 0 {
				continue // the reconcile does nothing for it either
			}
			if labels.SelectorFromValidatedSet(matchLabels).Matches(have) {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(p)})
			}
		}
		return out
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("connectionpoolpolicy").
		For(newPolicy()).
		Watches(&appsv1.Deployment{}, selectingPolicies, builder.WithPredicates(readFieldsChanged)).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}
