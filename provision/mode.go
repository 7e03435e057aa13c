package provision

import "os"

func fsMode(m uint32) os.FileMode { return os.FileMode(m) }
