"""Privacy: retention, a person's export and erasure, and the links that ask for them."""
