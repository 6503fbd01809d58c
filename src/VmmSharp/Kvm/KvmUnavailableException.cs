namespace VmmSharp.Kvm;

/// <summary>
/// KVM cannot be used on this host at all: <c>/dev/kvm</c> is missing, not accessible, or speaks an
/// unsupported API. The message says what is missing and how to fix it.
/// </summary>
/// <remarks>Threading: immutable; any thread may use it.</remarks>
public sealed class KvmUnavailableException : VmmException
{
    /// <summary>Creates the error with a message saying what is missing and how to fix it.</summary>
    public KvmUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an error with a message and its cause.</summary>
    public KvmUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates an error with no message.</summary>
    public KvmUnavailableException()
    {
    }
}
