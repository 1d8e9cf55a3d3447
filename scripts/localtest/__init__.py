"""altinn-localtest: a local stand-in for the Altinn 3 platform (Storage, App API,
Authentication test tokens) with a request log and fault injection, for altinnfs's demo, tests
and benchmarks. Standard library only. See README.md beside this file."""

VERSION = "0.1.0"
