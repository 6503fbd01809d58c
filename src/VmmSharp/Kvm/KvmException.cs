using VmmSharp.Interop;

namespace VmmSharp.Kvm;

/// <summary>A KVM ioctl failed. The message names the ioctl, the errno and the arguments that matter.</summary>
/// <remarks>Threading: immutable; any thread may use it.</remarks>
public sealed class KvmException : VmmException
{
    internal KvmException(uint request, int errno, string? detail)
        : base($"{KvmIoctl.Name(request)} failed: {Libc.ErrorText(errno)} (errno {errno}){(detail is null ? "" : $"; {detail}")}")
    {
        Ioctl = KvmIoctl.Name(request);
        Errno = errno;
    }

    /// <summary>Creates an error with a message.</summary>
    public KvmException(string message)
        : base(message)
    {
        Ioctl = "";
    }

    /// <summary>Creates an error with a message and its cause.</summary>
    public KvmException(string message, Exception innerException)
        : base(message, innerException)
    {
        Ioctl = "";
    }

    /// <summary>Creates an error with no message.</summary>
    public KvmException()
    {
        Ioctl = "";
    }

    /// <summary>The ioctl's name, e.g. <c>KVM_SET_USER_MEMORY_REGION</c>.</summary>
    public string Ioctl { get; }

    /// <summary>The errno the kernel returned.</summary>
    public int Errno { get; }
}
