//! The esox reconcilers. (Being written: see the controller brief.)
