namespace VmmSharp.Memory;

/// <summary>A guest-physical access that no region backs, or that writes to a read-only region.</summary>
/// <remarks>Threading: immutable; any thread may use it.</remarks>
public sealed class GuestMemoryException : VmmException
{
    /// <summary>Creates the error for an access of <paramref name="length"/> bytes at <paramref name="address"/>.</summary>
    public GuestMemoryException(ulong address, ulong length, string reason)
        : base($"guest memory access of {length} byte(s) at 0x{address:x}: {reason}")
    {
        Address = address;
        Length = length;
    }

    /// <summary>Creates an error with a message.</summary>
    public GuestMemoryException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an error with a message and its cause.</summary>
    public GuestMemoryException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates an error with no message.</summary>
    public GuestMemoryException()
    {
    }

    /// <summary>The guest-physical address of the access.</summary>
    public ulong Address { get; }

    /// <summary>The length of the access in bytes.</summary>
    public ulong Length { get; }
}
