namespace VmmSharp.Boot;

/// <summary>
/// A kernel image (or initrd) that cannot be booted: unrecognised, truncated, of an unsupported protocol,
/// or too large for guest RAM. The message names the offending value.
/// </summary>
public sealed class InvalidKernelImageException : VmmException
{
    /// <summary>Creates the error with a message that says what was wrong and with which value.</summary>
    public InvalidKernelImageException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the error with a message and its cause.</summary>
    public InvalidKernelImageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates an error with no message; prefer the constructors that say what failed.</summary>
    public InvalidKernelImageException()
    {
    }
}
