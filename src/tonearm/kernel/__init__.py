"""Small pieces every domain shares: ids, errors, paging, the clock and the database handle."""
