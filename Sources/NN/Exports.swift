// The JSON target (parser, values, writer) is part of NN's API: users of NN see it without
// importing it.
@_exported import JSON
// Files (regular-file checks, temporary files, the output committer) likewise.
@_exported import Files
