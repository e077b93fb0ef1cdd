"""The API's SQL, one module per entity; routes never build queries themselves."""
