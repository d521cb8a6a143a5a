{{- define "openpacs.fullname" -}}
{{ .Release.Name }}-openpacs
{{- end }}

{{- define "openpacs.labels" -}}
app.kubernetes.io/name: openpacs
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: Helm
helm.sh/chart: openpacs-{{ .Chart.Version }}
{{- end }}

{{- define "openpacs.selector" -}}
app.kubernetes.io/name: openpacs
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
