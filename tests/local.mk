# tests/: integration and interop tests (real daemons on loopback).
