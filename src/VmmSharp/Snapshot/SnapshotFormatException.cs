namespace VmmSharp.Snapshot;

/// <summary>A snapshot that cannot be restored: truncated, corrupt, of an unknown version, or not made for this host.</summary>
public sealed class SnapshotFormatException : VmmException
{
    /// <summary>Creates an error whose message names the file and the value that is wrong.</summary>
    public SnapshotFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an error with a message and its cause.</summary>
    public SnapshotFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates an error with no message; prefer the constructors that say what is wrong.</summary>
    public SnapshotFormatException()
    {
    }
}
