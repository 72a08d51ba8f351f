//! JSON bodies carried by remoting commands (route data, heartbeat, topic config, ...).
