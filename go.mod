module github.com/llama2-go/llama2

go 1.26.0

require (
	github.com/ardanlabs/jinja v1.8.0
	github.com/stretchr/testify v1.12.1
	golang.org/x/sys v0.50.0
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect
