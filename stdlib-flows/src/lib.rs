//! The national "one thing" (一件事) processes and the holiday calendars, as data (the
//! stdlib-flows issue fills it).
