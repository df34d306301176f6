{{/* Names. */}}
{{- define "alula.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "alula.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "alula.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "alula.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels: common ones, then the selector of one component (`dict "ctx" $ "component" "admin"`). */}}
{{- define "alula.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "alula.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "alula.selectorLabels" -}}
app.kubernetes.io/name: {{ include "alula.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "alula.componentLabels" -}}
{{ include "alula.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The ports alula-server listens on inside its pods (the Services map theirs onto them). */}}
{{- define "alula.grpcPort" -}}8089{{- end -}}
{{- define "alula.httpPort" -}}8088{{- end -}}

{{- define "alula.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Service accounts. */}}
{{- define "alula.adminServiceAccount" -}}
{{- if .Values.admin.serviceAccount.create -}}
{{- default (printf "%s-admin" (include "alula.fullname" .)) .Values.admin.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.admin.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "alula.propellerServiceAccount" -}}
{{- if .Values.propeller.serviceAccount.create -}}
{{- default (printf "%s-propeller" (include "alula.fullname" .)) .Values.propeller.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.propeller.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "alula.taskServiceAccount" -}}
{{- if .Values.tasks.serviceAccount.create -}}
{{- default (printf "%s-task" (include "alula.fullname" .)) .Values.tasks.serviceAccount.name -}}
{{- else -}}
{{- .Values.tasks.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "alula.tasksNamespace" -}}
{{- default .Release.Namespace .Values.tasks.namespace -}}
{{- end -}}

{{/* Where clients reach admin over HTTP. */}}
{{- define "alula.publicHttpUrl" -}}
{{- $scheme := ternary "https" "http" .Values.tls.enabled -}}
{{- default (printf "%s://%s-admin.%s.svc.cluster.local:%d" $scheme (include "alula.fullname" .) .Release.Namespace (int .Values.admin.service.httpPort)) .Values.admin.publicHttpUrl -}}
{{- end -}}

{{/* The Secret with admin's certificate (tls.crt, tls.key). */}}
{{- define "alula.tlsSecretName" -}}
{{- default (printf "%s-admin-tls" (include "alula.fullname" .)) .Values.tls.secretName -}}
{{- end -}}

{{/* The storage URL both roles use. */}}
{{- define "alula.storageUrl" -}}
{{- $s3 := .Values.storage.s3 -}}
{{- required "storage.s3.bucket is required" $s3.bucket | printf "s3://%s" -}}
{{- with trimAll "/" $s3.prefix }}/{{ . }}{{ end -}}
{{- end -}}

{{/* A percent-escaped URL component (user, password, database name): urlquery writes a space as
"+", which a URL's user info would read literally (a real "+" comes out as %2B). */}}
{{- define "alula.urlEscape" -}}
{{- urlquery . | replace "+" "%20" -}}
{{- end -}}

{{/* Secrets: name and key of the database URL, the signing key and the S3 credentials. */}}
{{- define "alula.databaseSecretName" -}}
{{- if and (not .Values.postgresql.enabled) .Values.externalDatabase.existingSecret -}}
{{- .Values.externalDatabase.existingSecret -}}
{{- else -}}
{{- printf "%s-database" (include "alula.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "alula.databaseSecretKey" -}}
{{- if and (not .Values.postgresql.enabled) .Values.externalDatabase.existingSecret -}}
{{- .Values.externalDatabase.existingSecretKey -}}
{{- else -}}
database-url
{{- end -}}
{{- end -}}

{{- define "alula.signingKeySecretName" -}}
{{- default (printf "%s-signing-key" (include "alula.fullname" .)) .Values.admin.existingSigningKeySecret -}}
{{- end -}}

{{- define "alula.s3SecretName" -}}
{{- default (printf "%s-s3" (include "alula.fullname" .)) .Values.storage.s3.existingSecret -}}
{{- end -}}

{{- define "alula.s3HasCredentials" -}}
{{- if or .Values.storage.s3.existingSecret .Values.storage.s3.accessKeyId -}}true{{- end -}}
{{- end -}}

{{/* A value of the values file as TOML: strings JSON-quoted (a valid TOML basic string), YAML's
float64 numbers as integers (every number in the config is one), maps as inline tables. */}}
{{- define "alula.toml" -}}
{{- if kindIs "string" . -}}
{{- toJson . -}}
{{- else if kindIs "bool" . -}}
{{- ternary "true" "false" . -}}
{{- else if or (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) -}}
{{- int64 . -}}
{{- else if kindIs "map" . -}}
{ {{- $first := true -}}
{{- range $k, $v := . -}}
{{- if not $first }}, {{ end -}}{{- $first = false -}}
{{- toJson $k }} = {{ include "alula.toml" $v -}}
{{- end -}} }
{{- else if kindIs "slice" . -}}
[{{- range $i, $v := . -}}{{- if $i }}, {{ end -}}{{- include "alula.toml" $v -}}{{- end -}}]
{{- else -}}
{{- fail (printf "cannot render %v (%s) as TOML" . (kindOf .)) -}}
{{- end -}}
{{- end -}}

{{/* Environment shared by admin and propeller: config, database, storage. */}}
{{- define "alula.serverEnv" -}}
- name: RUST_LOG
  value: {{ .Values.config.logLevel | quote }}
- name: ALULA_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "alula.databaseSecretName" . }}
      key: {{ include "alula.databaseSecretKey" . }}
{{ include "alula.storageEnv" . }}
{{- end -}}

{{/* Whether propeller reaches admin over gRPC (and holds no database credentials). */}}
{{- define "alula.propellerUsesControlPlane" -}}
{{- if .Values.propeller.controlPlane.enabled }}true{{ end -}}
{{- end -}}

{{/* Admin's gRPC endpoint inside the cluster, as propeller reaches it (its certificate names
the Service's names when tls.enabled). */}}
{{- define "alula.controlPlaneEndpoint" -}}
{{- printf "%s://%s-admin.%s.svc:%d" (ternary "https" "http" .Values.tls.enabled) (include "alula.fullname" .) .Release.Namespace (int .Values.admin.service.grpcPort) -}}
{{- end -}}

{{/* Propeller's environment with a control plane: admin's endpoint and its client's
credentials instead of the database's URL. */}}
{{- define "alula.controlPlaneEnv" -}}
{{- $cp := .Values.propeller.controlPlane -}}
- name: RUST_LOG
  value: {{ .Values.config.logLevel | quote }}
- name: ALULA_CONTROL_PLANE_ENDPOINT
  value: {{ include "alula.controlPlaneEndpoint" . | quote }}
{{- if not .Values.tls.enabled }}
# Plain gRPC inside the cluster (tls.enabled turns it to TLS); networkPolicy limits who
# reaches admin's port.
- name: ALULA_CONTROL_PLANE_INSECURE_PLAINTEXT
  value: "true"
{{- end }}
{{- if ne .Values.auth.mode "off" }}
- name: ALULA_CONTROL_PLANE_CLIENT_ID
  value: {{ $cp.clientId | quote }}
- name: ALULA_CONTROL_PLANE_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ required "propeller.controlPlane.existingSecret is required: a Secret holding the secret of propeller's client (see values.yaml)" $cp.existingSecret }}
      key: {{ $cp.existingSecretKey }}
{{- end }}
{{- with $cp.caSecret }}
- name: ALULA_CONTROL_PLANE_CA_FILE
  value: /etc/alula-control-plane-ca/ca.crt
{{- end }}
{{ include "alula.storageEnv" . }}
{{- end -}}

{{/* The object store's settings, and extraEnv: what every server container gets. */}}
{{- define "alula.storageEnv" -}}
- name: ALULA_STORAGE_URL
  value: {{ include "alula.storageUrl" . | quote }}
- name: AWS_REGION
  value: {{ .Values.storage.s3.region | quote }}
{{- with .Values.storage.s3.endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- if .Values.storage.s3.allowHttp }}
- name: AWS_ALLOW_HTTP
  value: "true"
{{- end }}
{{- if include "alula.s3HasCredentials" . }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "alula.s3SecretName" . }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "alula.s3SecretName" . }}
      key: AWS_SECRET_ACCESS_KEY
{{- end }}
{{- with .Values.config.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Prometheus scrape annotations for a pod serving /metrics on the HTTP port. */}}
{{- define "alula.metricsAnnotations" -}}
{{- if .Values.metrics.prometheusAnnotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ include "alula.httpPort" . | quote }}
prometheus.io/path: /metrics
{{- end -}}
{{- end -}}
