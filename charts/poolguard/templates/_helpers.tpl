{{/* Chart name, truncated to the 63 characters of a label value. */}}
{{- define "poolguard.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: the release name, suffixed with the chart name unless it already contains it. */}}
{{- define "poolguard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "poolguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "poolguard.labels" -}}
helm.sh/chart: {{ include "poolguard.chart" . }}
{{ include "poolguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels that select the manager's pods. */}}
{{- define "poolguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "poolguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "poolguard.managerSelectorLabels" -}}
{{ include "poolguard.selectorLabels" . }}
app.kubernetes.io/component: manager
{{- end -}}

{{- define "poolguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "poolguard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "poolguard.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The manager's rules, in a ClusterRole (cluster-wide) or a Role per watched namespace. Least privilege: no
wildcards; Secrets are read one by one, never listed or watched. Equal to deploy/rbac/role.yaml
(scripts/check-manifests compares them).
*/}}
{{- define "poolguard.managerRules" -}}
- apiGroups: ["poolguard.dev"]
  resources: ["connectionpoolpolicies"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["poolguard.dev"]
  resources: ["connectionpoolpolicies/status"]
  verbs: ["patch"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["batch"]
  resources: ["cronjobs"]
  verbs: ["list", "watch", "patch"]
# Jobs are counted and checked, never written: a Job's pod template cannot change.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch"]
# Argo Rollouts' Rollouts: watched only where their CRD is installed.
- apiGroups: ["argoproj.io"]
  resources: ["rollouts"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{/* runbook_url of an alert: the configured base plus the alert's section anchor. */}}
{{- define "poolguard.runbookUrl" -}}
{{- printf "%s#%s" .root.Values.prometheusRule.runbookBaseUrl (lower .alert) -}}
{{- end -}}
