{{- define "tumbler.name" -}}tumbler{{- end -}}
{{- define "tumbler.fullname" -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- /* Names of cluster-scoped objects: the release's name and namespace, so that two
installs (other names, or one name in two namespaces) never share one. */ -}}
{{- define "tumbler.clusterName" -}}{{ printf "%s-%s" (include "tumbler.fullname" .) .Release.Namespace }}{{- end -}}
{{- define "tumbler.labels" -}}
app.kubernetes.io/name: tumbler
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "tumbler.selector" -}}
app.kubernetes.io/name: tumbler
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "tumbler.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "tumbler.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}
{{- /* The pods of one shard: not matched by the main Deployment's selector. */ -}}
{{- define "tumbler.shardSelector" -}}
app.kubernetes.io/name: tumbler
app.kubernetes.io/instance: {{ printf "%s-%s" .root.Release.Name .shard | trunc 63 | trimSuffix "-" }}
{{- end -}}
{{- /* watchNamespaces, sorted and without duplicates, as a JSON array (what the controller's
--watch-namespace makes of them too). */ -}}
{{- define "tumbler.watchNamespaces" -}}
{{- .Values.watchNamespaces | uniq | sortAlpha | toJson -}}
{{- end -}}
{{- /* The metrics Service of the main workload (shard "") or of one shard. */ -}}
{{- define "tumbler.metricsService" -}}
{{- if .shard -}}
{{ printf "%s-%s" (include "tumbler.fullname" .root) .shard | trunc 55 | trimSuffix "-" }}-metrics
{{- else -}}
{{ include "tumbler.fullname" .root }}-metrics
{{- end -}}
{{- end -}}
{{- /* PromQL label matchers for this installation's series in the alert rules: prometheusRule.selector, or the job names the chart's ServiceMonitor gives them (the Service names). */ -}}
{{- define "tumbler.promSelector" -}}
{{- if .Values.prometheusRule.selector -}}
{{ .Values.prometheusRule.selector }}
{{- else -}}
job=~"{{ include "tumbler.fullname" . }}(-.+)?-metrics"
{{- end -}}
{{- end -}}
