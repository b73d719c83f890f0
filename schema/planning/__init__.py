"""Planning over GraphQL: demand, transfer recommendations, replenishment suggestions, planning policies."""
