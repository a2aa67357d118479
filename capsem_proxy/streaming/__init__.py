"""Stream framing (SSE, Gemini's JSON array) and the relay that sends answers on to clients."""
