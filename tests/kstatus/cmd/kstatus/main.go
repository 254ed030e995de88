// kstatus prints what sigs.k8s.io/cli-utils' kstatus (the library Flux's kustomize-controller and helm-controller
// use to wait for health) computes for objects read as JSON from stdin: one object, or a List such as
// `kubectl get -o json` prints. Output: a JSON array of {kind, namespace, name, status, message}. The e2e tests
// run it on the objects poolguard wrote on a real API server.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	// Through apimachinery's decoder: integers stay int64, as kstatus' accessors require.
	var obj map[string]interface{}
	if err := utiljson.Unmarshal(data, &obj); err != nil {
		return fmt.Errorf("stdin is not a JSON object: %w", err)
	}
	var objects []*unstructured.Unstructured
	if items, isList := obj["items"].([]interface{}); isList {
		for i, item := range items {
			m, ok := item.(map[string]interface{})
			if !ok {
				return fmt.Errorf("items[%d] is not an object", i)
			}
			objects = append(objects, &unstructured.Unstructured{Object: m})
		}
	} else {
		objects = append(objects, &unstructured.Unstructured{Object: obj})
	}
	results := []result{}
	for _, u := range objects {
		r, err := status.Compute(u)
		if err != nil {
			return fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		results = append(results, result{u.GetKind(), u.GetNamespace(), u.GetName(), r.Status.String(), r.Message})
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(results)
}
