"""The maths and its data, no I/O: returns and estimators, losses, distributions, networks,
normalization, vector environments, configs (plain validated data) and the runtime (seeds, devices).
Imports nothing else of policygrad."""
