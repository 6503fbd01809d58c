namespace VmmSharp.Memory;

/// <summary>A memory file that cannot back the guest's memory: missing, unreadable, or of the wrong size.</summary>
public sealed class GuestMemoryFileException : VmmException
{
    /// <summary>Creates the error for the file at <paramref name="path"/>; <paramref name="problem"/> says what is wrong with it.</summary>
    public GuestMemoryFileException(string path, string problem)
        : base($"memory file '{path}' {problem}")
    {
        Path = path;
    }

    /// <summary>Creates an error with no message; prefer the constructor that names the file.</summary>
    public GuestMemoryFileException()
    {
        Path = "";
    }

    /// <summary>Creates an error with a message and its cause.</summary>
    public GuestMemoryFileException(string message, Exception innerException)
        : base(message, innerException)
    {
        Path = "";
    }

    /// <summary>The memory file.</summary>
    public string Path { get; }
}
