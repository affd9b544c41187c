package bed

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// CSIDriver is the name of the simulated CSI driver whose volumes the
	// bed attaches.
	CSIDriver = "hostpath.csi.liberator.test"
	// StorageClass is the StorageClass of the volumes CreateVolume makes.
	StorageClass = "standard"
)

// CreateVolume pre-provisions a ReadWriteOnce CSI PersistentVolume of the
// given size (e.g. "1Gi") reserved for the claim namespace/claim, such as
// "pvc-mysql-0" of a StatefulSet's volumeClaimTemplate "pvc", after
// EnsureStorage. The kube-controller-manager
// binds the claim once it exists; its attach-detach controller then creates
// a VolumeAttachment for the node of a pod using it, which the bed's
// simulated external-attacher marks attached.
func (c *Cluster) CreateVolume(ctx context.Context, name, namespace, claim, size string) error {
	qty, err := resource.ParseQuantity(size)
	if err != nil {
		return fmt.Errorf("bed: volume %s: size: %w", name, err)
	}
	if err := c.EnsureStorage(ctx); err != nil {
		return err
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: qty},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              StorageClass,
			VolumeMode:                    new(corev1.PersistentVolumeFilesystem),
			ClaimRef: &corev1.ObjectReference{
				Kind:       "PersistentVolumeClaim",
				APIVersion: "v1",
				Namespace:  namespace,
				Name:       claim,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				CSI: &corev1.CSIPersistentVolumeSource{
					Driver:       CSIDriver,
					VolumeHandle: name,
					FSType:       "ext4",
				},
			},
		},
	}
	if _, err := c.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("bed: create volume %s: %w", name, err)
	}
	return nil
}

// EnsureStorage creates, unless they exist, the StorageClass StorageClass
// (provisioner CSIDriver, binding Immediate, reclaim Retain) and the
// CSIDriver object of CSIDriver (attach required).
func (c *Cluster) EnsureStorage(ctx context.Context) error {
	sc := &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: StorageClass},
		Provisioner:       CSIDriver,
		ReclaimPolicy:     new(corev1.PersistentVolumeReclaimRetain),
		VolumeBindingMode: new(storagev1.VolumeBindingImmediate),
	}
	if _, err := c.client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("bed: create StorageClass %s: %w", StorageClass, err)
	}
	driver := &storagev1.CSIDriver{
		ObjectMeta: metav1.ObjectMeta{Name: CSIDriver},
		Spec: storagev1.CSIDriverSpec{
			AttachRequired: new(true),
			PodInfoOnMount: new(false),
		},
	}
	if _, err := c.client.StorageV1().CSIDrivers().Create(ctx, driver, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("bed: create CSIDriver %s: %w", CSIDriver, err)
	}
	return nil
}
