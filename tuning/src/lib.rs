//! Host checks, disk probe and recommended settings.
