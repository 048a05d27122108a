//! Placeholder: the formatter is being written.
