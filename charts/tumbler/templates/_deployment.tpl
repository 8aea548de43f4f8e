{{- /*
One workload of the controller: the main one, or one per entry of `shards` (Flux's
sharding convention, docs/SHARDING.md). Each shard watches only the Releases and
Environments labelled `sharding.fluxcd.io/key: <shard>`, the main one those without the
label, and each elects its own leader (the Lease name follows from the selector).
A Deployment with an emptyDir git cache; with `gitCache.type: pvc` a StatefulSet whose
volumeClaimTemplate gives each replica a claim of its own (one ReadWriteOnce claim cannot
be shared by replicas on several nodes). With more than one replica, a PodDisruptionBudget.
*/ -}}
{{- define "tumbler.deployment" -}}
{{- $shard := .shard -}}
{{- $name := .name -}}
{{- $selector := .selector -}}
{{- $watch := .watch -}}
{{- $service := .service -}}
{{- with .root -}}
{{- $leader := or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) }}
{{- $pvc := eq .Values.gitCache.type "pvc" }}
{{- $namespaces := include "tumbler.watchNamespaces" . | fromJsonArray }}
apiVersion: apps/v1
kind: {{ ternary "StatefulSet" "Deployment" $pvc }}
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels: {{- include "tumbler.labels" . | nindent 4 }}
    {{- with $shard }}
    tumbler.dev/shard: {{ . }}
    {{- end }}
spec:
  replicas: {{ .Values.replicas }}
  {{- if $pvc }}
  serviceName: {{ $service }}
  podManagementPolicy: Parallel
  {{- end }}
  selector:
    matchLabels: {{- $selector | nindent 6 }}
  template:
    metadata:
      labels: {{- $selector | nindent 8 }}
        {{- with $shard }}
        tumbler.dev/shard: {{ . }}
        {{- end }}
      {{- with .Values.podAnnotations }}
      annotations: {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "tumbler.serviceAccount" . }}
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets: {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext: {{- toYaml .Values.podSecurityContext | nindent 8 }}
      containers:
        - name: controller
          image: "{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}"
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          args:
            - controller
            - --cache-dir=/var/cache/tumbler
            - --metrics-addr=0.0.0.0:{{ .Values.metrics.port }}
            - --concurrency={{ .Values.concurrency }}
            - --log-format={{ .Values.logFormat }}
            - --log={{ .Values.logLevel }}
            {{- with $namespaces }}
            - --watch-namespace={{ join "," . }}
            {{- end }}
            {{- with $watch }}
            - --watch-label-selector={{ . }}
            {{- end }}
            - --git-timeout={{ .Values.gitTimeoutSeconds }}
            {{- if $leader }}
            - --leader-election
            - --lease-seconds={{ .Values.leaderElection.leaseSeconds }}
            {{- end }}
            {{- if not .Values.fluxNudge }}
            - --no-flux-nudge
            {{- end }}
          env:
            - name: POD_NAME
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
            - name: POD_NAMESPACE
              valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
            {{- with .Values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: metrics
              containerPort: {{ .Values.metrics.port }}
          livenessProbe:
            httpGet: {path: /healthz, port: metrics}
            periodSeconds: 20
          readinessProbe:
            httpGet: {path: /readyz, port: metrics}
            periodSeconds: 10
          resources: {{- toYaml .Values.resources | nindent 12 }}
          securityContext: {{- toYaml .Values.securityContext | nindent 12 }}
          volumeMounts:
            - {name: git-cache, mountPath: /var/cache/tumbler}
            - {name: tmp, mountPath: /tmp}
      volumes:
        - name: tmp
          emptyDir: {}
        {{- if not $pvc }}
        - name: git-cache
          emptyDir:
            sizeLimit: {{ .Values.gitCache.size }}
        {{- end }}
      {{- with .Values.nodeSelector }}
      nodeSelector: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.affinity }}
      affinity: {{- toYaml . | nindent 8 }}
      {{- end }}
  {{- if $pvc }}
  volumeClaimTemplates:
    - metadata:
        name: git-cache
        # Only the selector's labels: a StatefulSet's claim templates cannot change later.
        labels: {{- $selector | nindent 10 }}
      spec:
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: {{ .Values.gitCache.size }}}}
        {{- with .Values.gitCache.storageClass }}
        storageClassName: {{ . }}
        {{- end }}
  {{- end }}
{{- if and .Values.podDisruptionBudget.enabled (gt (int .Values.replicas) 1) }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels: {{- include "tumbler.labels" . | nindent 4 }}
    {{- with $shard }}
    tumbler.dev/shard: {{ . }}
    {{- end }}
spec:
  maxUnavailable: {{ .Values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels: {{- $selector | nindent 6 }}
{{- end }}
{{- end }}
{{- end -}}
