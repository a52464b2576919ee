"""Reading and writing events: ROOT (TTree, RNTuple) through uproot, Parquet through awkward."""
