// The JSON target (parser, values, writer) is part of NN's API: users of NN see it without
// importing it.
@_exported import JSON
