"""Write the package: tables into CSV, Parquet, the descriptor, Popolo and the zip."""
