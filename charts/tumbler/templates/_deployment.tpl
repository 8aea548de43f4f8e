{{- /*
One Deployment of the controller: the main one, or one per entry of `shards` (Flux's
sharding convention, docs/SHARDING.md). Each shard watches only the Releases and
Environments labelled `sharding.fluxcd.io/key: <shard>`, the main one those without the
label, and each elects its own leader (the Lease name follows from the selector).
*/ -}}
{{- define "tumbler.deployment" -}}
{{- $shard := .shard -}}
{{- $name := .name -}}
{{- $selector := .selector -}}
{{- $watch := .watch -}}
{{- with .root -}}
{{- $leader := or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels: {{- include "tumbler.labels" . | nindent 4 }}
    {{- with $shard }}
    tumbler.dev/shard: {{ . }}
    {{- end }}
spec:
  replicas: {{ .Values.replicas }}
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
            {{- if eq (len .Values.watchNamespaces) 1 }}
            - --watch-namespace={{ first .Values.watchNamespaces }}
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
        - name: git-cache
          {{- if eq .Values.gitCache.type "pvc" }}
          persistentVolumeClaim:
            claimName: {{ $name }}-git-cache
          {{- else }}
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
{{- if eq .Values.gitCache.type "pvc" }}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ $name }}-git-cache
  namespace: {{ .Release.Namespace }}
  labels: {{- include "tumbler.labels" . | nindent 4 }}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: {{ .Values.gitCache.size }}}}
  {{- with .Values.gitCache.storageClass }}
  storageClassName: {{ . }}
  {{- end }}
{{- end }}
{{- end }}
{{- end -}}
